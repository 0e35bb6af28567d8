import knex, { type Knex } from 'knex'
import type { CatalogStore } from '../catalog/catalog-store.js'
import { DEFAULT_SERVER, type ServerRecord } from '../catalog/server-store.js'
import { connectionFromUrl, knexConfig, type PgConnection } from '../db/knex-config.js'
import type { CatalogIdentity } from '../db/object-marks.js'
import { ServerAdmin } from '../db/server-admin.js'
import { SiloError, serverNotFound } from '../errors.js'
import type { SiloEvents } from '../events.js'
import { Ownership } from './ownership.js'
import { placementOrder, refusal } from './placement.js'
import { SPARES_MADE_AT_ONCE, SpareDatabases } from './spare-databases.js'
import { TenantTemplate } from './tenant-template.js'

/** Connections of a server's admin pool: locked operations at once (4), and its spares' background work. */
export const SERVER_ADMIN_POOL_MAX = 4 + SPARES_MADE_AT_ONCE
/** A server that has not answered by then is unreachable (placement skips it; a pinned operation fails). */
const CONNECT_TIMEOUT_MS = 5000

/** What Silo works with on one server: its admin connection, this catalog's marks there, its template and spares. */
export interface ServerParts {
  readonly id: string
  readonly name: string
  /** The admin URL's connection settings (for `default`, DATABASE_URL's). Never log them: they hold its password. */
  readonly connection: PgConnection
  readonly admin: ServerAdmin
  readonly serverVersion: string
  readonly ownership: Ownership
  /** Undefined when TENANT_TEMPLATE=off. */
  readonly template: TenantTemplate | undefined
  /** Undefined when spares are off (TENANT_SPARES=0, no template, or a process that makes none). */
  readonly spares: SpareDatabases | undefined
}

export interface ServerFleetOptions {
  catalog: CatalogStore
  identity: CatalogIdentity
  /** DATABASE_URL's server, opened by openSilo: the `default` server's parts. */
  defaultServer: { connection: PgConnection, admin: ServerAdmin, serverVersion: string }
  prefix: string
  /** Clone new tenants from a template on each server (TENANT_TEMPLATE). */
  template: boolean
  /** Spare databases each server keeps (0: none). */
  spares: number
  /** The most a server keeps while creates outrun `spares`. */
  sparesMax?: number
  events: SiloEvents
}

/**
 * The servers of the registry as this process reaches them. `default` (DATABASE_URL) is opened
 * with the process; any other server on first use, and kept open: its admin pool, its template
 * and, in a process that keeps spares, its spares. A server that does not answer is not kept, so
 * the next use tries again.
 */
export class ServerFleet {
  readonly #options: ServerFleetOptions
  readonly #opened = new Map<string, Promise<ServerParts>>()
  readonly #adminPools: Knex[] = []
  readonly #all: ServerParts[] = []
  #defaultId: string | undefined
  #closed = false

  constructor (options: ServerFleetOptions) {
    this.#options = options
  }

  /** Finds the `default` server's record and opens its parts; once, before any other call. */
  async start (): Promise<ServerParts> {
    const record = await this.#options.catalog.servers.byName(DEFAULT_SERVER)
    if (record === null) throw new Error('the catalog has no default server (migration 20261206000001_servers)')
    this.#defaultId = record.id
    const { connection, admin, serverVersion } = this.#options.defaultServer
    await this.#options.catalog.servers.noteVersion(record.id, serverVersion)
    const parts = this.#build(record, connection, admin, serverVersion)
    this.#opened.set(record.id, Promise.resolve(parts))
    return parts
  }

  /** The `default` server's parts (DATABASE_URL). */
  get default (): ServerParts {
    const id = this.#defaultId
    const parts = id === undefined ? undefined : this.#all.find((candidate) => candidate.id === id)
    if (parts === undefined) throw new Error('ServerFleet.start() was not called')
    return parts
  }

  /** The parts of the server with this id, opened if need be; SERVER_UNAVAILABLE when it does not answer. */
  async byId (id: string): Promise<ServerParts> {
    const known = this.#opened.get(id)
    if (known !== undefined) return await known
    const record = await this.#options.catalog.servers.byId(id)
    if (record === null) throw new SiloError('SERVER_NOT_FOUND', `No server with id ${id}`)
    return await this.open(record)
  }

  /** The parts of the server of this name, opened if need be. */
  async byName (name: string): Promise<ServerParts> {
    const record = await this.#options.catalog.servers.byName(name)
    if (record === null) throw serverNotFound(name)
    return await this.open(record)
  }

  /** Opens `record`'s server (once), checking that it answers. */
  async open (record: ServerRecord): Promise<ServerParts> {
    if (this.#closed) throw new SiloError('SERVER_UNAVAILABLE', 'This instance is shutting down')
    let opening = this.#opened.get(record.id)
    if (opening === undefined) {
      opening = this.#connect(record)
      this.#opened.set(record.id, opening)
      // A server that did not answer is tried again by the next use.
      opening.catch(() => { if (this.#opened.get(record.id) === opening) this.#opened.delete(record.id) })
    }
    return await opening
  }

  /**
   * Where a new tenant goes. Pinned (`server`): that server, if it takes tenants (active, not
   * full) and answers. Otherwise the placement order (fewest tenants per unit of weight among
   * active servers with room, ties by name), skipping servers that do not answer. Callers hold
   * the catalog's placement lock, so counts do not change under them. `check` is the caller's
   * first question to the chosen server (is the name free?), asked as the proof that it answers
   * (one round trip, not a ping and then the question); its answer comes back with the server.
   */
  async place<T> (server: string | undefined, check: (parts: ServerParts) => Promise<T>): Promise<{ parts: ServerParts, answer: T }> {
    const servers = await this.#options.catalog.servers.list()
    if (server !== undefined) {
      const pinned = servers.find((candidate) => candidate.name === server)
      if (pinned === undefined) throw serverNotFound(server)
      const why = refusal(pinned)
      if (why !== undefined) throw new SiloError('SERVER_NOT_ACCEPTING', `Server ${server} takes no new tenants: ${why}`)
      return await this.#asking(pinned, check)
    }
    const unreachable: string[] = []
    for (const candidate of placementOrder(servers)) {
      try {
        return await this.#asking(candidate, check)
      } catch (error) {
        if (!(error instanceof SiloError) || error.code !== 'SERVER_UNAVAILABLE') throw error
        unreachable.push(candidate.name)
      }
    }
    const refused = servers.map((candidate) => `${candidate.name}: ${refusal(candidate) ?? (unreachable.includes(candidate.name) ? 'it does not answer' : 'skipped')}`)
    throw new SiloError('NO_SERVER_AVAILABLE', `No server takes a new tenant now (${refused.join('; ')})`)
  }

  /**
   * The registered server at this address (host and port as written: its admin URL's, DATABASE_URL's
   * for `default`, or its tenant endpoint), or null. An attached database there counts against
   * that server's budget. A server whose admin URL this instance cannot decrypt is matched by its
   * tenant endpoint only.
   */
  async atAddress (host: string, port: number): Promise<ServerRecord | null> {
    const wanted = `${host.toLowerCase()}:${port}`
    for (const record of await this.#options.catalog.servers.list()) {
      let admin: Pick<PgConnection, 'host' | 'port'> | null = null
      try {
        admin = record.name === DEFAULT_SERVER ? this.#options.defaultServer.connection : record.adminUrl === null ? null : connectionFromUrl(record.adminUrl)
      } catch {}
      const tenantHost = record.tenantHost ?? admin?.host
      const tenantPort = record.tenantPort ?? admin?.port
      const addresses = [admin === null ? '' : `${admin.host}:${admin.port}`, tenantHost === undefined || tenantPort === undefined ? '' : `${tenantHost}:${tenantPort}`]
      if (addresses.some((address) => address.toLowerCase() === wanted)) return record
    }
    return null
  }

  /** Starts each opened server's spares (a server process), and those of servers opened later. */
  startSpares (): void {
    for (const parts of this.#all) parts.spares?.start()
  }

  /** Forgets a server (removed from the registry): its spares stop, its admin pool closes. */
  async retire (id: string): Promise<void> {
    const opening = this.#opened.get(id)
    this.#opened.delete(id)
    const parts = await opening?.catch(() => undefined)
    if (parts === undefined) return
    this.#all.splice(this.#all.indexOf(parts), 1)
    await parts.spares?.close()
    const pool = parts.admin.knex
    const index = this.#adminPools.indexOf(pool)
    if (index !== -1) {
      this.#adminPools.splice(index, 1)
      await pool.destroy()
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    await Promise.allSettled([...this.#opened.values()])
    await Promise.all(this.#all.map(async (parts) => await parts.spares?.close()))
    await Promise.all(this.#adminPools.map(async (pool) => { await pool.destroy() }))
  }

  async #connect (record: ServerRecord): Promise<ServerParts> {
    let url: string | null
    try {
      url = record.adminUrl
    } catch (error) {
      // Sealed under a key this process does not hold (see catalog-key.ts): it cannot log in there.
      throw new SiloError('SERVER_UNAVAILABLE', `Server ${record.name} cannot be reached from this instance: ${(error as Error).message}`, { cause: error })
    }
    if (url === null) throw new Error(`server ${record.name} has no admin URL`)
    const connection = connectionFromUrl(url)
    const adminDb = knex(knexConfig({
      connection: { ...connection, connectionTimeoutMillis: CONNECT_TIMEOUT_MS },
      pool: { min: 0, max: SERVER_ADMIN_POOL_MAX },
      quiet: true
    }))
    const admin = new ServerAdmin(adminDb)
    let serverVersion: string
    try {
      serverVersion = await admin.serverVersion()
    } catch (error) {
      await adminDb.destroy()
      throw unavailable(record.name, error)
    }
    if (this.#closed) {
      await adminDb.destroy()
      throw new SiloError('SERVER_UNAVAILABLE', 'This instance is shutting down')
    }
    this.#adminPools.push(adminDb)
    await this.#options.catalog.servers.noteVersion(record.id, serverVersion)
    const parts = this.#build(record, connection, admin, serverVersion)
    parts.spares?.start()
    return parts
  }

  #build (record: ServerRecord, connection: PgConnection, admin: ServerAdmin, serverVersion: string): ServerParts {
    const { catalog, identity, prefix, events } = this.#options
    const ownership = new Ownership(identity, admin)
    const template = this.#options.template
      ? new TenantTemplate({ admin, catalog, ownership, server: connection, prefix, serverVersion, ...(record.name === DEFAULT_SERVER ? {} : { serverName: record.name }) })
      : undefined
    const spares = template !== undefined && this.#options.spares > 0
      ? new SpareDatabases({ admin, catalog, ownership, template, prefix, target: this.#options.spares, maxTarget: Math.max(this.#options.spares, this.#options.sparesMax ?? 0), events })
      : undefined
    const parts: ServerParts = { id: record.id, name: record.name, connection, admin, serverVersion, ownership, template, spares }
    this.#all.push(parts)
    return parts
  }

  /** `record`'s parts, once its server answers a query now (one opened before may have gone down since); SERVER_UNAVAILABLE otherwise. */
  async answering (record: ServerRecord): Promise<ServerParts> {
    return (await this.#asking(record, async (parts) => await parts.admin.knex.raw('select 1'))).parts
  }

  /** `record`'s server opened and asked `check`: any failure of either is SERVER_UNAVAILABLE. */
  async #asking<T> (record: ServerRecord, check: (parts: ServerParts) => Promise<T>): Promise<{ parts: ServerParts, answer: T }> {
    const parts = await this.open(record)
    try {
      return { parts, answer: await check(parts) }
    } catch (error) {
      throw unavailable(parts.name, error)
    }
  }
}

/** SERVER_UNAVAILABLE naming the server, with the driver's reason as the cause (its message names no password). */
function unavailable (name: string, cause: unknown): SiloError {
  return new SiloError('SERVER_UNAVAILABLE', `Server ${name} does not answer`, { cause })
}
