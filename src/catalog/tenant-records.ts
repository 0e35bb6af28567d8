import { connectionFromUrl, type PgConnection } from '../db/knex-config.js'
import { CredentialUndecryptable, type CredentialCipher } from './credential-cipher.js'

export const TENANT_STATUSES = ['provisioning', 'active', 'suspended', 'failed', 'dropping'] as const
export type TenantStatus = typeof TENANT_STATUSES[number]
/** The statuses an admin moves a tenant between (suspend, resume); the others belong to create and drop. */
export const SETTABLE_STATUSES = ['active', 'suspended'] as const satisfies readonly TenantStatus[]
export type SettableStatus = typeof SETTABLE_STATUSES[number]

/**
 * Where a tenant's data lives and how to log in to it (password decrypted, kept in memory only).
 * When the stored credential cannot be decrypted, reading `password` throws the reason (see
 * `unreadableCredential`): the rest of the record (status, domains) still serves whatever
 * does not log in to the tenant's database (suspend, drop, list, a fleet run's other tenants).
 */
export interface TenantDatabase {
  host: string | null
  port: number | null
  name: string
  user: string
  password: string
  /** An attached database's own TLS setting (from its URL); otherwise its server's applies. */
  ssl?: PgConnection['ssl']
}

/** Where a server's tenant databases are reached: host, port and TLS (no credential). */
export interface TenantEndpoint {
  host: string
  port: number
  ssl?: PgConnection['ssl']
}

/** The server a tenant's database is on, as its pools and migrations need it. */
export interface TenantServer {
  id: string
  name: string
  /** Its tenant endpoint, or the host and port of its admin URL (for `default`, of DATABASE_URL), with the admin URL's TLS. */
  endpoint: TenantEndpoint
  /** PostgreSQL's version there, when known (knex then skips its probe). */
  version: string | null
  /** Most connections to its tenant databases (`servers add --budget`); null: CONNECTION_BUDGET. */
  budget: number | null
}

export interface TenantRecord {
  id: string
  slug: string
  name: string
  status: TenantStatus
  schemaVersion: string | null
  /** Every domain of the tenant, the primary first: cached with the record, so `GET /tenant` needs no catalog query. */
  domains: string[]
  server: TenantServer
  database: TenantDatabase
  /** A database Silo did not create (`tenants attach`): never dropped, marked or judged as Silo's. */
  attached: boolean
  /** False for one attached with `--no-migrate`: fleet migrations and the schema guard leave it alone. */
  schemaManaged: boolean
  /**
   * Its writes are frozen for the last part of a move (`tenants.frozen_until` was ahead when the
   * record was read): requests wait for the switch (see FreezeHolds) instead of being served.
   */
  frozen: boolean
}

/** The server id and name an attached database on no registered server is known by: its address. */
export const unregisteredServer = (host: string, port: number): { id: string, name: string } => ({ id: `address:${host}:${port}`, name: `${host}:${port}` })

/** Whether the tenant's server is one of the registry (not the address of an attached database on none). */
export const isRegisteredServer = (server: Pick<TenantServer, 'id'>): boolean => !server.id.startsWith('address:')

export interface TenantSummary {
  id: string
  slug: string
  name: string
  status: TenantStatus
  schemaVersion: string | null
  databaseName: string
  databaseUser: string
  /** The name of the registered server its database is on; null for an attached database on none. */
  server: string | null
  attached: boolean
  schemaManaged: boolean
  domains: string[]
  primaryDomain: string | null
  createdAt: Date
  updatedAt: Date
}

/** A tenants row as the catalog's queries select it. */
export interface TenantRow {
  id: string
  slug: string
  name: string
  status: TenantStatus
  db_host: string | null
  db_port: number | null
  db_name: string
  db_user: string
  db_password: string
  schema_version: string | null
  /** Null only for an attached database on no registered server. */
  server_id: string | null
  attached: boolean
  schema_managed: boolean
  db_ssl: PgConnection['ssl'] | null
  /** The end of a move's write freeze (see migration tenant_moves). */
  frozen_until: Date | null
  /** Present when selected with FROZEN_NOW: whether the freeze is ahead by the catalog's clock. */
  frozen?: boolean
  created_at: Date
  updated_at: Date
  /** Present when selected with DOMAINS_OF_TENANT. */
  domains?: string[] | null
  /** Present when selected with SERVER_OF_TENANT. */
  server_name?: string
  server_admin_url?: string | null
  server_tenant_host?: string | null
  server_tenant_port?: number | null
  server_version?: string | null
  server_connection_budget?: number | null
}

/** Records whose credential could not be decrypted, with the reason (no secret in it). */
const unreadable = new WeakMap<TenantRecord, CredentialUndecryptable>()

/** Why this record's password cannot be read, or undefined when it can. */
export function unreadableCredential (tenant: TenantRecord): CredentialUndecryptable | undefined {
  return unreadable.get(tenant)
}

/**
 * Turns tenants rows into records: the credential decrypted (or, when it cannot be, the reason
 * kept), and the tenant's server endpoint resolved, its admin URL decrypted and parsed once.
 */
export class TenantRecords {
  readonly #cipher: CredentialCipher
  readonly #defaultEndpoint: TenantEndpoint
  /** Endpoints of servers by their sealed admin URL: decrypted and parsed once, not per tenant read. */
  readonly #endpoints = new Map<string, TenantEndpoint | CredentialUndecryptable>()

  /** `defaultServer`: DATABASE_URL's connection, where the `default` server's tenants are reached. */
  constructor (cipher: CredentialCipher, defaultServer: Pick<PgConnection, 'host' | 'port' | 'ssl'>) {
    this.#cipher = cipher
    this.#defaultEndpoint = endpointOf(defaultServer)
  }

  toRecord (row: TenantRow): TenantRecord {
    const endpoint = this.#serverEndpoint(row)
    const record: TenantRecord = {
      id: row.id,
      slug: row.slug,
      name: row.name,
      status: row.status,
      schemaVersion: row.schema_version,
      domains: row.domains ?? [],
      server: row.server_id === null
        ? { ...unregisteredServer(row.db_host ?? '', row.db_port ?? 0), endpoint: { host: row.db_host ?? '', port: row.db_port ?? 0 }, version: null, budget: null }
        : {
            id: row.server_id,
            name: row.server_name ?? '',
            endpoint: endpoint instanceof CredentialUndecryptable ? this.#defaultEndpoint : endpoint,
            version: row.server_version ?? null,
            budget: row.server_connection_budget ?? null
          },
      database: {
        host: row.db_host,
        port: row.db_port,
        name: row.db_name,
        user: row.db_user,
        password: '',
        ...(row.attached ? { ssl: row.db_ssl ?? false } : {})
      },
      attached: row.attached,
      schemaManaged: row.schema_managed,
      frozen: row.frozen === true
    }
    try {
      if (endpoint instanceof CredentialUndecryptable) throw endpoint
      record.database.password = this.#cipher.decrypt(row.db_password)
    } catch (error) {
      if (!(error instanceof CredentialUndecryptable)) throw error
      const problem = error === endpoint
        ? new CredentialUndecryptable(error.reason, `The server of tenant ${row.slug} (${row.server_name ?? '?'}) cannot be reached: its admin URL cannot be decrypted: ${error.message}`, error.keyId)
        : new CredentialUndecryptable(error.reason, `The credential of tenant ${row.slug} cannot be decrypted: ${error.message}`, error.keyId)
      Object.defineProperty(record.database, 'password', { enumerable: true, get: () => { throw problem } })
      unreadable.set(record, problem)
    }
    return record
  }

  /** The endpoint of the row's server: DATABASE_URL's for `default`, else from its (sealed) admin URL, with its tenant host and port over it. */
  #serverEndpoint (row: TenantRow): TenantEndpoint | CredentialUndecryptable {
    let base: TenantEndpoint | CredentialUndecryptable = this.#defaultEndpoint
    const sealed = row.server_admin_url ?? null
    if (sealed !== null) {
      let known = this.#endpoints.get(sealed)
      if (known === undefined) {
        try {
          known = endpointOf(connectionFromUrl(this.#cipher.decrypt(sealed)))
        } catch (error) {
          if (!(error instanceof CredentialUndecryptable)) throw error
          known = error
        }
        // Bounded by the number of servers (and their re-encryptions by a rekey).
        if (this.#endpoints.size > 1000) this.#endpoints.clear()
        this.#endpoints.set(sealed, known)
      }
      base = known
    }
    if (base instanceof CredentialUndecryptable) return base
    const host = row.server_tenant_host ?? null
    const port = row.server_tenant_port ?? null
    return host === null && port === null ? base : { ...base, host: host ?? base.host, port: port ?? base.port }
  }
}

/** The summary of a tenants row selected with its domains and its server's name. */
export function toSummary (row: TenantRow & { domains: string[] }, primaryDomain: string | null): TenantSummary {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    status: row.status,
    schemaVersion: row.schema_version,
    databaseName: row.db_name,
    databaseUser: row.db_user,
    server: row.server_id === null ? null : row.server_name ?? '',
    attached: row.attached,
    schemaManaged: row.schema_managed,
    domains: row.domains,
    primaryDomain,
    createdAt: row.created_at,
    updatedAt: row.updated_at
  }
}

/** Host, port and TLS of a connection: what a tenant's connection takes from its server's. */
function endpointOf (connection: Pick<PgConnection, 'host' | 'port' | 'ssl'>): TenantEndpoint {
  return { host: connection.host, port: connection.port, ...(connection.ssl === undefined ? {} : { ssl: connection.ssl }) }
}
