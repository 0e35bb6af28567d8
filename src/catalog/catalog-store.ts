import type { Knex } from 'knex'
import type { PgConnection } from '../db/knex-config.js'
import { isUniqueViolation } from '../db/sqlstate.js'
import { AdvisoryLocks } from './advisory-locks.js'
import type { CredentialCipher } from './credential-cipher.js'
import { FleetMigrationLog } from './fleet-migrations.js'
import { MigrationRunLog } from './migration-runs.js'
import { ServerStore } from './server-store.js'
import { TenantMoves } from './tenant-moves.js'
import { tenantColumnLengths, tenantPage, type TenantColumnLengths, type TenantFilter, type TenantPage, type TenantPageQuery } from './tenant-page.js'
import { CatalogConflict, DOMAINS_OF_TENANT, FROZEN_NOW, SERVER_OF_TENANT, insertAttachedTenantRow, insertTenantRow, type NewAttachedTenant, type NewTenant } from './tenant-inserts.js'
import { TenantRecords, toSummary, type TenantRecord, type TenantRow, type TenantStatus, type TenantSummary } from './tenant-records.js'

// The record types are the store's vocabulary: they are imported from here across the tree.
export { SETTABLE_STATUSES, TENANT_STATUSES, isRegisteredServer, unreadableCredential } from './tenant-records.js'
export { CatalogConflict } from './tenant-inserts.js'
export type { NewAttachedTenant, NewTenant } from './tenant-inserts.js'
export type { TenantColumnLengths, TenantFilter, TenantPage, TenantPageQuery } from './tenant-page.js'
export type { SettableStatus, TenantDatabase, TenantEndpoint, TenantRecord, TenantServer, TenantStatus, TenantSummary } from './tenant-records.js'

/** Every query Silo makes of the catalog database. */
export class CatalogStore {
  readonly #knex: Knex
  readonly #locks: AdvisoryLocks
  readonly #cipher: CredentialCipher
  readonly #records: TenantRecords

  /** The record of every tenant migration attempt (migration_runs). */
  readonly runs: MigrationRunLog
  /** Runs over every tenant (fleet_migrations), each the group of its tenants' migration_runs rows. */
  readonly fleetMigrations: FleetMigrationLog
  /** The PostgreSQL servers tenant databases are placed on. */
  readonly servers: ServerStore
  /** Moves of tenants between servers (tenant_moves), and a move's freeze and switch. */
  readonly moves: TenantMoves

  /**
   * `knex` serves every query; `locks`, a small pool of its own on the same database, only holds
   * advisory locks. An operation holds its lock for its whole duration and runs its queries
   * beside it; were the lock on `knex` too, a burst of operations could take every connection
   * for their locks and then wait forever for one to query with.
   */
  constructor (knex: Knex, cipher: CredentialCipher, locks: Knex, defaultServer: Pick<PgConnection, 'host' | 'port' | 'ssl'>) {
    this.#knex = knex
    this.#locks = new AdvisoryLocks(locks)
    this.#cipher = cipher
    this.#records = new TenantRecords(cipher, defaultServer)
    this.runs = new MigrationRunLog(knex)
    this.fleetMigrations = new FleetMigrationLog(knex)
    this.servers = new ServerStore(knex, cipher)
    this.moves = new TenantMoves(knex)
  }

  get knex (): Knex {
    return this.#knex
  }

  /**
   * Runs `fn` while holding a catalog advisory lock on the slug, so two processes (CLI, admin
   * API, several instances) never provision or drop one tenant at once. The lock lives in a
   * session of the lock pool: a process that dies mid-way releases it with its connection.
   * `fn`'s own catalog writes run on the main pool and commit on their own (a create's
   * `provisioning` row is durable before its database is made). Returns `undefined` without
   * running `fn` when another holder has it.
   */
  async withTenantLock<T> (slug: string, fn: () => Promise<T>): Promise<{ value: T } | undefined> {
    return await this.#locks.run(`silo:tenant:${slug}`, 'try', async () => ({ value: await fn() }))
  }

  /**
   * Runs `fn` holding the advisory lock `key` when no one else holds it (`undefined`, `fn` not
   * run, when someone does), for an operation of which one at a time may run in the whole
   * deployment (a fleet migration). Held in a session of the lock pool, as withTenantLock's.
   */
  async withTryLock<T> (key: string, fn: () => Promise<T>): Promise<{ value: T } | undefined> {
    return await this.#locks.run(`silo:${key}`, 'try', async () => ({ value: await fn() }))
  }

  /**
   * Runs `fn` holding a (blocking) advisory lock on `key` in the catalog database: `shared`
   * holders run together, an exclusive holder alone. Used for the template database (clones
   * share it, a refresh takes it alone) and for a spare while it is made. Inside another locked
   * operation it is taken on that operation's lock session.
   */
  async withLock<T> (key: string, mode: 'shared' | 'exclusive', fn: () => Promise<T>): Promise<T> {
    return await this.#locks.run(`silo:${key}`, mode, fn) as T
  }

  /**
   * Runs `fn` outside the current operation's locks: work started from a locked operation that
   * outlives it (spares made again after a claim) must not take its locks on that operation's
   * session, which would hold the operation until that work is done.
   */
  outsideLocks<T> (fn: () => T): T {
    return this.#locks.outside(fn)
  }

  /** The catalog's generated id, and whether the objects of tenants made before marks were marked. */
  async identity (): Promise<{ id: string, objectsMarked: boolean }> {
    const row = await this.#knex('catalog_identity').first<{ id: string, objects_marked_at: Date | null } | undefined>('id', 'objects_marked_at')
    if (row === undefined) throw new Error('The catalog has no identity row')
    return { id: row.id, objectsMarked: row.objects_marked_at !== null }
  }

  async setObjectsMarked (): Promise<void> {
    await this.#knex('catalog_identity').update({ objects_marked_at: this.#knex.fn.now() })
  }

  /** Whether someone holds the advisory lock `withLock` takes on `key` right now. */
  async isLocked (key: string): Promise<boolean> {
    return await this.#knex.transaction(async (trx) => {
      const { rows } = await trx.raw<{ rows: Array<{ free: boolean }> }>('select pg_try_advisory_xact_lock(hashtextextended(?, 0)) as free', [`silo:${key}`])
      return rows[0]?.free !== true
    })
  }

  /**
   * Whether a session holds the advisory lock `withTryLock` takes on `key`, read from pg_locks:
   * unlike isLocked, it never takes the lock itself, so it never makes a `try` of another
   * operation fail while it looks (a console polling a fleet migration while one is started).
   */
  async lockHeld (key: string): Promise<boolean> {
    const { rows } = await this.#knex.raw<{ rows: Array<{ held: boolean }> }>(`
      with k as (select hashtextextended(?, 0) as k)
      select exists (
        select 1 from pg_locks, k
        where locktype = 'advisory' and granted and objsubid = 1
          and database = (select oid from pg_database where datname = current_database())
          and classid = ((k.k >> 32) & 4294967295)::oid and objid = (k.k & 4294967295)::oid
      ) as held`, [`silo:${key}`])
    return rows[0]?.held === true
  }

  async ping (): Promise<void> {
    await this.#knex.raw('select 1')
  }

  async tenantByHost (host: string): Promise<TenantRecord | null> {
    // A join on the unique host, not `where exists`: the planner needs a quarter of the time for it,
    // and this query is on the path of every first request for a host. Servers are left-joined:
    // an attached database may be on no registered server.
    const row = await this.#knex<TenantRow>('domains as requested')
      .join('tenants', 'tenants.id', 'requested.tenant_id')
      .leftJoin('servers', 'servers.id', 'tenants.server_id')
      .where('requested.host', host)
      .first('tenants.*', ...SERVER_OF_TENANT, this.#knex.raw(DOMAINS_OF_TENANT), this.#knex.raw(FROZEN_NOW))
    return row === undefined ? null : this.#records.toRecord(row)
  }

  /**
   * Up to `max` hosts with their tenants' records, in one query (the newest tenants first when
   * there are more): what an instance holds in memory from the start, so that a first request for
   * a host needs no catalog round trip (see HostResolver.preload).
   */
  async hostsWithTenants (max: number): Promise<Array<{ host: string, tenant: TenantRecord }>> {
    const rows = await this.#knex<TenantRow>('tenants').leftJoin('servers', 'servers.id', 'tenants.server_id')
      .whereExists((sub) => { void sub.select(1).from('domains').whereRaw('domains.tenant_id = tenants.id') })
      .orderBy('tenants.created_at', 'desc').limit(max)
      .select('tenants.*', ...SERVER_OF_TENANT, this.#knex.raw(DOMAINS_OF_TENANT), this.#knex.raw(FROZEN_NOW))
    const hosts: Array<{ host: string, tenant: TenantRecord }> = []
    for (const row of rows) {
      const tenant = this.#records.toRecord(row)
      for (const host of tenant.domains) if (hosts.length < max) hosts.push({ host, tenant })
    }
    return hosts
  }

  /** The tenants of these slugs, in one query; slugs with no tenant are absent from the map. */
  async tenantsBySlugs (slugs: string[]): Promise<Map<string, TenantRecord>> {
    const rows = await this.#knex<TenantRow>('tenants').leftJoin('servers', 'servers.id', 'tenants.server_id')
      .whereIn('slug', slugs).select('tenants.*', ...SERVER_OF_TENANT, this.#knex.raw(DOMAINS_OF_TENANT), this.#knex.raw(FROZEN_NOW))
    return new Map(rows.map((row) => [row.slug, this.#records.toRecord(row)]))
  }

  /** Each tenant's server id, by slug, in one query whatever the number of slugs (those with no tenant are absent). */
  async serverIdsOf (slugs: string[]): Promise<Map<string, string>> {
    const { rows } = await this.#knex.raw<{ rows: Array<{ slug: string, server_id: string }> }>(
      'select slug, coalesce(server_id::text, \'address:\' || db_host || \':\' || db_port) as server_id from tenants where slug = any(?::text[])', [slugs])
    return new Map(rows.map((row) => [row.slug, row.server_id]))
  }

  async tenantBySlug (slug: string): Promise<TenantRecord | null> {
    const row = await this.#knex<TenantRow>('tenants').leftJoin('servers', 'servers.id', 'tenants.server_id')
      .where({ slug }).first('tenants.*', ...SERVER_OF_TENANT, this.#knex.raw(DOMAINS_OF_TENANT), this.#knex.raw(FROZEN_NOW))
    return row === undefined ? null : this.#records.toRecord(row)
  }

  async listTenants (slugs?: string[]): Promise<TenantSummary[]> {
    const query = this.#knex<TenantRow>('tenants')
      .leftJoin('servers', 'servers.id', 'tenants.server_id')
      .leftJoin('domains', 'domains.tenant_id', 'tenants.id')
      .groupBy('tenants.id', 'servers.name')
      .orderBy('tenants.slug')
      .select(
        'tenants.*',
        'servers.name as server_name',
        this.#knex.raw('coalesce(array_agg(domains.host order by domains.is_primary desc, domains.host) filter (where domains.host is not null), \'{}\') as domains'),
        this.#knex.raw('max(domains.host) filter (where domains.is_primary) as primary_domain')
      )
    if (slugs !== undefined) query.whereIn('tenants.slug', slugs)
    const rows = await query as Array<TenantRow & { domains: string[], primary_domain: string | null }>
    return rows.map((row) => toSummary(row, row.primary_domain))
  }

  /**
   * One page of the tenants a filter picks, in slug order, shaped as `listTenants` shapes them:
   * what a fleet of any size is listed with, a page at a time.
   */
  async tenantPage (query: TenantPageQuery): Promise<TenantPage> {
    return await tenantPage(this.#knex, query)
  }

  /** The longest slug, status, server, schema version and database name among the tenants a filter picks. */
  async tenantColumnLengths (filter: TenantFilter): Promise<TenantColumnLengths> {
    return await tenantColumnLengths(this.#knex, filter)
  }

  async domainsOf (tenantId: string): Promise<string[]> {
    return await this.#knex('domains').where({ tenant_id: tenantId }).orderBy([{ column: 'is_primary', order: 'desc' }, 'host']).pluck('host')
  }

  /** Inserts the tenant (status provisioning) and its domains, the first one primary, in one statement. */
  async insertTenant (tenant: NewTenant): Promise<TenantRecord> {
    return this.#records.toRecord(await insertTenantRow(this.#knex, this.#cipher, tenant))
  }

  async setStatus (slug: string, status: TenantStatus): Promise<void> {
    await this.#knex('tenants').where({ slug }).update({ status, updated_at: this.#knex.fn.now() })
  }

  /** A provisioned tenant goes live: its schema version and status `active`, in one statement that returns its summary. */
  async activate (slug: string, version: string | null): Promise<TenantSummary> {
    const { rows } = await this.#knex.raw<{ rows: Array<TenantRow & { domains: string[] }> }>(`
      update tenants set status = 'active', schema_version = ?, updated_at = now() where slug = ?
      returning *, ${DOMAINS_OF_TENANT}, (select name from servers where servers.id = tenants.server_id) as server_name`, [version, slug])
    const row = rows[0]
    if (row === undefined) throw new Error(`tenant ${slug} vanished while it was provisioned`)
    return toSummary(row, row.domains[0] ?? null)
  }

  /** Inserts an attached tenant (status provisioning until its migrations ran) and its domains, the first one primary. */
  async insertAttachedTenant (tenant: NewAttachedTenant): Promise<TenantRecord> {
    return this.#records.toRecord(await insertAttachedTenantRow(this.#knex, this.#cipher, tenant))
  }

  async setSchemaVersion (slug: string, version: string | null): Promise<void> {
    await this.#knex('tenants').where({ slug }).update({ schema_version: version, updated_at: this.#knex.fn.now() })
  }

  /** Points an attached tenant at another connection (its role's password rotated, its database moved); false when it is not an attached tenant. */
  async updateAttachedConnection (slug: string, connection: Omit<NewAttachedTenant, 'slug' | 'name' | 'schemaManaged' | 'domains'>): Promise<boolean> {
    try {
      const updated = await this.#knex('tenants').where({ slug, attached: true }).update({
        server_id: connection.serverId,
        db_host: connection.host,
        db_port: connection.port,
        db_ssl: JSON.stringify(connection.ssl ?? false),
        db_name: connection.databaseName,
        db_user: connection.databaseUser,
        db_password: this.#cipher.encrypt(connection.password),
        updated_at: this.#knex.fn.now()
      })
      return updated === 1
    } catch (error) {
      if (isUniqueViolation(error)) throw new CatalogConflict('database', connection.databaseName)
      throw error
    }
  }

  async deleteTenant (slug: string): Promise<void> {
    await this.#knex('tenants').where({ slug }).delete()
  }

  /** Adds a domain; the tenant's first domain becomes its primary. */
  async addDomain (tenantId: string, host: string): Promise<void> {
    try {
      await this.#knex.transaction(async (trx) => {
        const hasPrimary = await trx('domains').where({ tenant_id: tenantId, is_primary: true }).first('host')
        await trx('domains').insert({ host, tenant_id: tenantId, is_primary: hasPrimary === undefined })
      })
    } catch (error) {
      if (isUniqueViolation(error)) throw new CatalogConflict('domain', host)
      throw error
    }
  }

  /** Removes a domain; when it was the primary, the next one (alphabetically) takes over. */
  async removeDomain (host: string): Promise<string | null> {
    return await this.#knex.transaction(async (trx) => {
      const [removed] = await trx('domains').where({ host }).delete().returning(['tenant_id', 'is_primary'])
      if (removed === undefined) return null
      if (removed.is_primary === true) {
        const next = await trx('domains').where({ tenant_id: removed.tenant_id }).orderBy('host').first('host')
        if (next !== undefined) await trx('domains').where({ host: next.host }).update({ is_primary: true })
      }
      return removed.tenant_id as string
    })
  }
}
