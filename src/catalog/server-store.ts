import type { Knex } from 'knex'
import { isForeignKeyViolation, isUniqueViolation } from '../db/sqlstate.js'
import { CredentialUndecryptable, type CredentialCipher } from './credential-cipher.js'

/** `active`: takes new tenants; `draining`: serves its tenants, takes no new ones; `disabled`: the same, and placement never considers it. */
export const SERVER_STATUSES = ['active', 'draining', 'disabled'] as const
export type ServerStatus = typeof SERVER_STATUSES[number]

/** The server of DATABASE_URL, registered by the catalog migration that introduced servers. */
export const DEFAULT_SERVER = 'default'

/** Server names follow the slug rules. */
export const SERVER_NAME_PATTERN = /^[a-z][a-z0-9-]{1,39}$/

/**
 * A PostgreSQL server tenant databases are placed on. `adminUrl` is decrypted and kept in memory
 * only: never log, print or answer it (the views in src/schemas leave it out). For `default` it is
 * null: each process uses its own DATABASE_URL.
 */
export interface ServerRecord {
  id: string
  name: string
  adminUrl: string | null
  /** Where tenant pools connect when not the admin URL's host and port (a pooler in front). */
  tenantHost: string | null
  tenantPort: number | null
  status: ServerStatus
  /** Most tenants it takes (null: no limit). */
  maxTenants: number | null
  /** Its share of new tenants against the others' (placement: fewest tenants per unit of weight). */
  weight: number
  /** Most connections to its tenant databases (null: the instance's CONNECTION_BUDGET). */
  connectionBudget: number | null
  /** PostgreSQL's version, last seen there. */
  serverVersion: string | null
  /** Tenants placed on it. */
  tenants: number
  createdAt: Date
  updatedAt: Date
}

export interface NewServer {
  name: string
  adminUrl: string
  tenantHost?: string | undefined
  tenantPort?: number | undefined
  maxTenants?: number | undefined
  weight?: number | undefined
  connectionBudget?: number | undefined
  serverVersion: string
}

interface ServerRow {
  id: string
  name: string
  admin_url: string | null
  tenant_host: string | null
  tenant_port: number | null
  status: ServerStatus
  max_tenants: number | null
  weight: number
  connection_budget: number | null
  server_version: string | null
  tenants: string | number
  created_at: Date
  updated_at: Date
}

/** Why a server could not be removed. */
export type ServerRemoval = 'removed' | 'missing' | 'in-use'

/** The catalog's `servers` table (see migrations/catalog/20261206000001_servers.ts). */
export class ServerStore {
  readonly #knex: Knex
  readonly #cipher: CredentialCipher

  constructor (knex: Knex, cipher: CredentialCipher) {
    this.#knex = knex
    this.#cipher = cipher
  }

  /** Every server, by name, with the number of tenants placed on it. */
  async list (): Promise<ServerRecord[]> {
    const rows = await this.#select().orderBy('servers.name') as ServerRow[]
    return rows.map((row) => this.#toRecord(row))
  }

  async byName (name: string): Promise<ServerRecord | null> {
    const row = await this.#select().where('servers.name', name).first() as ServerRow | undefined
    return row === undefined ? null : this.#toRecord(row)
  }

  async byId (id: string): Promise<ServerRecord | null> {
    const row = await this.#select().where('servers.id', id).first() as ServerRow | undefined
    return row === undefined ? null : this.#toRecord(row)
  }

  /** Records a server (status active); a name taken already is `undefined`. */
  async insert (server: NewServer): Promise<ServerRecord | undefined> {
    try {
      const [row] = await this.#knex('servers').insert({
        name: server.name,
        admin_url: this.#cipher.encrypt(server.adminUrl),
        tenant_host: server.tenantHost ?? null,
        tenant_port: server.tenantPort ?? null,
        max_tenants: server.maxTenants ?? null,
        weight: server.weight ?? 1,
        connection_budget: server.connectionBudget ?? null,
        server_version: server.serverVersion
      }).returning('*') as ServerRow[]
      if (row === undefined) throw new Error('insert returned no row')
      return this.#toRecord({ ...row, tenants: 0 })
    } catch (error) {
      if (isUniqueViolation(error)) return undefined
      throw error
    }
  }

  /** False when there is no such server. */
  async setStatus (name: string, status: ServerStatus): Promise<boolean> {
    const changed = await this.#knex('servers').where({ name }).update({ status, updated_at: this.#knex.fn.now() })
    return changed > 0
  }

  /** Records the version a server answered with, when it changed (a write only then). */
  async noteVersion (id: string, version: string): Promise<void> {
    await this.#knex('servers').where({ id }).whereRaw('server_version is distinct from ?', [version]).update({ server_version: version })
  }

  /** Removes a server that holds no tenant (the foreign key refuses otherwise, even against a create racing this). */
  async remove (name: string): Promise<ServerRemoval> {
    try {
      return await this.#knex('servers').where({ name }).delete() > 0 ? 'removed' : 'missing'
    } catch (error) {
      if (isForeignKeyViolation(error)) return 'in-use'
      throw error
    }
  }

  #select (): Knex.QueryBuilder {
    return this.#knex('servers').select('servers.*', this.#knex.raw('(select count(*) from tenants where tenants.server_id = servers.id) as tenants'))
  }

  #toRecord (row: ServerRow): ServerRecord {
    const record: ServerRecord = {
      id: row.id,
      name: row.name,
      adminUrl: null,
      tenantHost: row.tenant_host,
      tenantPort: row.tenant_port,
      status: row.status,
      maxTenants: row.max_tenants,
      weight: row.weight,
      connectionBudget: row.connection_budget,
      serverVersion: row.server_version,
      tenants: Number(row.tenants),
      createdAt: row.created_at,
      updatedAt: row.updated_at
    }
    // Not enumerable: off JSON.stringify and util.inspect's default view, so a record logged by mistake shows no password.
    Object.defineProperty(record, 'adminUrl', { enumerable: false, ...this.#adminUrl(row) })
    return record
  }

  /** The admin URL decrypted (null for `default`), or a getter that throws why it cannot be. */
  #adminUrl (row: ServerRow): PropertyDescriptor {
    if (row.admin_url === null) return { value: null }
    try {
      return { value: this.#cipher.decrypt(row.admin_url) }
    } catch (error) {
      if (!(error instanceof CredentialUndecryptable)) throw error
      const problem = new CredentialUndecryptable(error.reason, `The admin URL of server ${row.name} cannot be decrypted: ${error.message}`, error.keyId)
      return { get: () => { throw problem } }
    }
  }
}
