import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js'
import { openSilo, type Silo } from '../../src/silo.js'
import { closeInTeardown, testConfig, type Teardown } from './silo.js'

/** A PostgreSQL server the test owns: it can stop it and start it again on the same port. */
export interface EmbeddedServer {
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

/** Starts an embedded PostgreSQL in a fresh temporary directory (not torn down here: see `destroy`). */
export async function startEmbeddedServer (): Promise<EmbeddedServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'silo-test-pg-'))
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
      await server.stop()
      await rm(dataDir, { recursive: true, force: true })
    }
  }
  return server
}

/**
 * A Silo and its HTTP app whose catalog lives on an embedded PostgreSQL of the test's own
 * (CATALOG_DATABASE_URL), while tenant databases stay on the DATABASE_URL server: the test can
 * take the catalog down without touching the tenants, or the machine's cluster. One teardown,
 * in order: app, core, tenant databases and roles, then the embedded server and its files.
 */
export async function embeddedCatalogApp (
  t: Teardown,
  overrides: Record<string, string | number> = {}
): Promise<{ silo: Silo, app: FastifyInstance, catalogServer: EmbeddedServer }> {
  const catalogServer = await startEmbeddedServer()
  const config = testConfig({ CATALOG_DATABASE_URL: catalogServer.url, ...overrides })
  const opened = closeInTeardown(t, config, async () => { await catalogServer.destroy() })
  const silo = opened.silo = await openSilo(config)
  const app = opened.app = await buildApp(silo, { config })
  return { silo, app, catalogServer }
}
