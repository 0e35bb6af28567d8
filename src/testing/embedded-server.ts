import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../db/embedded-postgres.js'

/** A PostgreSQL server a test or a benchmark owns: it can stop it and start it again on the same port. */
export interface EmbeddedServer {
  /** A superuser's URL, with a password. */
  readonly url: string
  readonly port: number
  readonly running: boolean
  /** Fast shutdown (SIGINT): open sessions are terminated, new connections refused. */
  stop: () => Promise<void>
  /** Starts it again on the same port and data directory. */
  start: () => Promise<void>
  /** Stops it (if running) and removes its data directory. */
  destroy: () => Promise<void>
}

/**
 * Starts an embedded PostgreSQL (the `embedded-postgres` package's, beside whatever else runs
 * on the machine) in a fresh temporary directory named `<dirPrefix>…`, on a free loopback port,
 * with the durable settings of a real server. Not torn down here: the caller calls `destroy`.
 */
export async function startEmbeddedServer (options: { dirPrefix?: string } = {}): Promise<EmbeddedServer> {
  const dataDir = await mkdtemp(join(tmpdir(), options.dirPrefix ?? 'silo-test-pg-'))
  const password = randomBytes(18).toString('base64url')
  let current: EmbeddedPostgres | undefined
  try {
    current = await startEmbeddedPostgres({ dataDir, password })
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true })
    throw error
  }
  const url = current.url
  const port = Number(new URL(url).port)
  const server: EmbeddedServer = {
    url,
    port,
    get running () { return current !== undefined },
    stop: async () => {
      const stopping = current
      current = undefined
      await stopping?.stop()
    },
    start: async () => {
      if (current !== undefined) return
      current = await startEmbeddedPostgres({ dataDir, password, port })
    },
    destroy: async () => {
      try {
        await server.stop()
      } finally {
        await rm(dataDir, { recursive: true, force: true })
      }
    }
  }
  return server
}
