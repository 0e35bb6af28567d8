import knex from 'knex'
import type { CatalogStore } from '../catalog/catalog-store.js'
import { DEFAULT_SERVER, SERVER_NAME_PATTERN, type ServerRecord, type ServerStatus } from '../catalog/server-store.js'
import { parseConnectionUrl } from '../db/connection-url.js'
import { knexConfig, type PgConnection } from '../db/knex-config.js'
import { ServerAdmin } from '../db/server-admin.js'
import { isLoginRefused, isUndefinedDatabase } from '../db/sqlstate.js'
import { SiloError, serverNotFound, validationFailed } from '../errors.js'
import type { ServerFleet } from './server-fleet.js'
import { listSpares } from './spare-databases.js'

/** A server to register (`tenants servers add`, `POST /servers`). */
export interface AddServerInput {
  name: string
  /** postgres://user:password@host:port/database of a role with CREATEDB and CREATEROLE (or a superuser). */
  url: string
  tenantHost?: string | undefined
  tenantPort?: number | undefined
  maxTenants?: number | undefined
  weight?: number | undefined
  connectionBudget?: number | undefined
}

/** What a server looks like from here now: its record, and whether and how it answers. */
export interface ServerState {
  server: ServerRecord
  reachable: boolean
  /** Sessions open on its tenant databases (everyone's, not only this instance's). */
  tenantBackends: number | null
  /** Total size of its tenant databases, in bytes. */
  tenantBytes: number | null
}

const PROBE_TIMEOUT_MS = 5000

/**
 * Registering and retiring servers. A server is recorded only once its admin URL answers, logs in,
 * and may create databases and roles; its URL is sealed in the catalog and never printed. A
 * server is removed only while it holds no tenant (this catalog's template and spares on it go
 * with it). Each change is announced on the catalog feed.
 */
export class ServerRegistry {
  readonly #catalog: CatalogStore
  readonly #fleet: ServerFleet
  readonly #prefix: string

  constructor (deps: { catalog: CatalogStore, servers: ServerFleet, prefix: string }) {
    this.#catalog = deps.catalog
    this.#fleet = deps.servers
    this.#prefix = deps.prefix
  }

  async add (input: AddServerInput): Promise<ServerRecord> {
    const name = assertServerName(input.name)
    const connection = parseAdminUrl(input.url)
    if (input.tenantPort !== undefined && (!Number.isInteger(input.tenantPort) || input.tenantPort < 1 || input.tenantPort > 65535)) {
      throw validationFailed('The tenant port must be an integer from 1 to 65535')
    }
    if (input.tenantHost !== undefined && !/^[A-Za-z0-9.:_-]{1,253}$/.test(input.tenantHost)) throw validationFailed('The tenant host must be a host name or an IP address')
    for (const [what, value, max] of [['maximum of tenants', input.maxTenants, 1_000_000], ['weight', input.weight, 1000], ['connection budget', input.connectionBudget, 100_000]] as const) {
      if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > max)) throw validationFailed(`The ${what} must be an integer from 1 to ${max}`)
    }
    // A taken name is said before connecting anywhere (and checked again under the lock below).
    if (await this.#catalog.servers.byName(name) !== null) throw new SiloError('SERVER_TAKEN', `A server named ${name} is registered already`)
    const probe = await probeAdmin(name, connection)
    return await this.#catalog.withLock('placement', 'exclusive', async () => {
      for (const existing of await this.#catalog.servers.list()) {
        if (existing.name === name) throw new SiloError('SERVER_TAKEN', `A server named ${name} is registered already`)
        if (probe.systemIdentifier !== null && await this.#systemIdentifier(existing) === probe.systemIdentifier) {
          throw new SiloError('SERVER_TAKEN', `That PostgreSQL server is registered already, as ${existing.name}`)
        }
      }
      const { tenantHost, tenantPort, maxTenants, weight, connectionBudget } = input
      const record = await this.#catalog.servers.insert({ name, adminUrl: input.url, tenantHost, tenantPort, maxTenants, weight, connectionBudget, serverVersion: probe.serverVersion })
      if (record === undefined) throw new SiloError('SERVER_TAKEN', `A server named ${name} is registered already`)
      return record
    })
  }

  /** Every server, each probed (at once, each within 5 s): reachable, tenant sessions, tenant database sizes. */
  async list (): Promise<ServerState[]> {
    const [servers, tenants] = await Promise.all([this.#catalog.servers.list(), this.#catalog.listTenants()])
    return await Promise.all(servers.map(async (server) => await this.#state(server, tenants.filter((tenant) => tenant.server === server.name).map((tenant) => tenant.databaseName))))
  }

  async get (name: string): Promise<ServerState> {
    const server = await this.#catalog.servers.byName(name)
    if (server === null) throw serverNotFound(name)
    const databases = (await this.#catalog.listTenants()).filter((tenant) => tenant.server === name).map((tenant) => tenant.databaseName)
    return await this.#state(server, databases)
  }

  /** `draining`: it serves its tenants and takes no new ones; `active` again with resume. */
  async setStatus (name: string, status: ServerStatus): Promise<ServerRecord> {
    if (!await this.#catalog.servers.setStatus(name, status)) throw serverNotFound(name)
    const server = await this.#catalog.servers.byName(name)
    if (server === null) throw serverNotFound(name)
    return server
  }

  /**
   * Removes a server that holds no tenant: this catalog's template and spares on it are dropped
   * (what carries this catalog's mark, nothing else), then its entry. A server that does not
   * answer is removed all the same (one gone for good must not stay registered); its template
   * and spares are then left there, and `cleaned` is false. `default` stays: it is DATABASE_URL's.
   */
  async remove (name: string): Promise<{ cleaned: boolean }> {
    if (name === DEFAULT_SERVER) throw new SiloError('SERVER_IN_USE', 'The default server is the one of DATABASE_URL; it cannot be removed')
    return await this.#catalog.withLock('placement', 'exclusive', async () => {
      const server = await this.#catalog.servers.byName(name)
      if (server === null) throw serverNotFound(name)
      if (server.tenants > 0) throw inUse(server)
      const parts = await this.#fleet.answering(server).catch((error: unknown) => {
        if (error instanceof SiloError && error.code === 'SERVER_UNAVAILABLE') return undefined
        throw error
      })
      if (parts !== undefined) {
        // No spare is being made there while its spares are dropped.
        await parts.spares?.close()
        for (const spare of await listSpares(parts.admin, parts.ownership, this.#prefix)) {
          await parts.ownership.dropDatabase(spare.name)
          await parts.ownership.dropRole(spare.name)
        }
        if (parts.template !== undefined) {
          await parts.ownership.dropDatabase(parts.template.databaseName)
          await parts.ownership.dropRole(parts.template.roleName)
        }
      }
      const removal = await this.#catalog.servers.remove(name)
      if (removal === 'missing') throw serverNotFound(name)
      if (removal === 'in-use') throw inUse(server)
      await this.#fleet.retire(server.id)
      return { cleaned: parts !== undefined }
    })
  }

  async #state (server: ServerRecord, databases: string[]): Promise<ServerState> {
    try {
      const parts = await this.#fleet.open(server)
      const { rows } = await parts.admin.knex.raw<{ rows: Array<{ backends: string, bytes: string | null }> }>(`
        select (select count(*) from pg_stat_activity where datname = any(?::text[])) as backends,
               (select sum(pg_database_size(datname)) from pg_database where datname = any(?::text[])) as bytes`, [databases, databases])
      const row = rows[0]
      return { server, reachable: true, tenantBackends: Number(row?.backends ?? 0), tenantBytes: Number(row?.bytes ?? 0) }
    } catch {
      // Not opened (it did not answer), or its query failed: either way it does not serve now.
      return { server, reachable: false, tenantBackends: null, tenantBytes: null }
    }
  }

  async #systemIdentifier (server: ServerRecord): Promise<string | null> {
    try {
      return await (await this.#fleet.open(server)).admin.systemIdentifier()
    } catch {
      return null
    }
  }
}

/** A server name (slug rules). A refused one is not repeated: an admin URL typed in its place would be. */
export function assertServerName (name: string): string {
  if (!SERVER_NAME_PATTERN.test(name)) {
    throw validationFailed('Invalid server name (not repeated): use 2-40 characters a-z, 0-9 and -, starting with a letter')
  }
  return name
}

/** The admin URL's connection settings; a malformed one is refused without being repeated (it may hold a password). */
export function parseAdminUrl (url: string): PgConnection {
  return parseConnectionUrl(url, 'The admin URL')
}

/** Connects with the admin URL and checks what a server needs; SERVER_UNUSABLE says which check failed. */
async function probeAdmin (name: string, connection: PgConnection): Promise<{ serverVersion: string, systemIdentifier: string | null }> {
  const db = knex(knexConfig({ connection: { ...connection, connectionTimeoutMillis: PROBE_TIMEOUT_MS }, pool: { min: 0, max: 1 }, quiet: true }))
  const where = `${connection.host}:${connection.port}`
  try {
    const admin = new ServerAdmin(db)
    let serverVersion: string
    try {
      serverVersion = await admin.serverVersion()
    } catch (error) {
      if (isLoginRefused(error)) throw new SiloError('SERVER_UNUSABLE', `Server ${name}: the login of role ${connection.user} at ${where} was refused (wrong password, no such role, or not allowed by pg_hba.conf)`, { cause: error })
      if (isUndefinedDatabase(error)) throw new SiloError('SERVER_UNUSABLE', `Server ${name}: the database ${connection.database} of the admin URL does not exist at ${where}`, { cause: error })
      throw new SiloError('SERVER_UNUSABLE', `Server ${name}: nothing answers as PostgreSQL at ${where}`, { cause: error })
    }
    const rights = await admin.adminRights()
    if (!rights.superuser && !(rights.createdb && rights.createrole)) {
      throw new SiloError('SERVER_UNUSABLE', `Server ${name}: role ${rights.role} may not create databases and roles there (it needs CREATEDB and CREATEROLE, or SUPERUSER)`)
    }
    return { serverVersion, systemIdentifier: await admin.systemIdentifier() }
  } finally {
    await db.destroy()
  }
}

function inUse (server: ServerRecord): SiloError {
  return new SiloError('SERVER_IN_USE', `Server ${server.name} holds ${server.tenants} tenant${server.tenants === 1 ? '' : 's'}; move or drop them first`)
}
