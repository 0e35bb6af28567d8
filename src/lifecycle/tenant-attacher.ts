import knex from 'knex'
import { CatalogConflict, isRegisteredServer, type CatalogStore, type TenantRecord, type TenantSummary } from '../catalog/catalog-store.js'
import type { HostResolver } from '../catalog/host-resolver.js'
import { parseConnectionUrl } from '../db/connection-url.js'
import { knexConfig, type PgConnection } from '../db/knex-config.js'
import { databaseMark, parseMark } from '../db/object-marks.js'
import { isDuplicateDefinition, isInsufficientPrivilege, isLoginRefused, isUndefinedDatabase } from '../db/sqlstate.js'
import { SiloError, tenantLocked, validationFailed } from '../errors.js'
import type { SiloEvents } from '../events.js'
import type { PoolCache } from '../tenancy/pool-cache.js'
import type { ServerFleet } from './server-fleet.js'
import type { TenantMigrator } from './tenant-migrator.js'
import { assertSlug, assertTenantName, claimableDomain } from './tenant-names.js'

/** A database Silo did not create, to serve as a tenant (`tenants attach`, `POST /tenants/attach`). */
export interface AttachTenantInput {
  slug: string
  name?: string | undefined
  /** postgres://user:password@host:port/database of the database, logged in as the role the tenant's requests use. */
  url: string
  domains: string[]
  /** Run the tenant migrations there (default true); false: its schema is its owner's, and fleet migrations leave it alone. */
  migrate?: boolean | undefined
}

export interface TenantAttacherDeps {
  catalog: CatalogStore
  servers: ServerFleet
  migrator: TenantMigrator
  reservedHosts?: string[]
  resolver?: HostResolver
  /** When it runs inside a server: the pool of a reattached tenant is replaced at once. */
  pools?: PoolCache
  events?: SiloEvents
}

const PROBE_TIMEOUT_MS = 5000

/** What the probe learns about the database, logged in with its URL. */
interface Probe {
  role: string
  superuser: boolean
  /** A Silo mark on the database (or its owner) or on the role: the catalog it names. */
  siloMark: string | null
  /** The database is a Silo catalog (it has `catalog_identity`). */
  catalog: boolean
}

/**
 * Attaches databases Silo did not create. The URL is checked before anything is recorded: it
 * must answer, log in, and not be a superuser's (a tenant's requests run as this role: a
 * superuser would reach every database of its server); the database must not be a Silo catalog
 * or carry a Silo mark (a tenant, template or spare of some catalog: attaching one would serve
 * another tenant's data). Then the tenant is recorded (provisioning), migrated as its own role
 * unless told not to, and made active; a failure removes its entry and nothing else, and a
 * migration that meets the database's own tables is rolled back whole (SCHEMA_CONFLICT). Its
 * password is sealed like every tenant credential; no message repeats the URL.
 */
export class TenantAttacher {
  readonly #deps: TenantAttacherDeps

  constructor (deps: TenantAttacherDeps) {
    this.#deps = deps
  }

  async attach (input: AttachTenantInput): Promise<TenantSummary> {
    const slug = assertSlug(input.slug)
    const name = assertTenantName(input.name, slug)
    const domains = [...new Set(input.domains.map((domain) => claimableDomain(domain, this.#deps.reservedHosts)))]
    if (domains.length === 0) throw validationFailed('A tenant needs at least one domain')
    const { catalog } = this.#deps
    const started = performance.now()
    const { connection, where, serverId } = await this.#checkedUrl(input.url)
    const migrate = input.migrate ?? true

    const result = await catalog.withTenantLock(slug, async () => {
      const existing = await catalog.tenantBySlug(slug)
      if (existing !== null) {
        // An attach interrupted before it finished: its entry goes, nothing else was made.
        if (!existing.attached || (existing.status !== 'provisioning' && existing.status !== 'failed')) throw new SiloError('SLUG_TAKEN', `Slug ${slug} is taken`)
        await catalog.deleteTenant(slug)
      }
      let tenant: TenantRecord
      try {
        tenant = await catalog.insertAttachedTenant({
          slug,
          name,
          serverId,
          host: connection.host,
          port: connection.port,
          ssl: connection.ssl,
          databaseName: connection.database,
          databaseUser: connection.user,
          password: connection.password ?? '',
          schemaManaged: migrate,
          domains
        })
      } catch (error) {
        throw error instanceof CatalogConflict ? error.refusal(attachedAlready(where)) : error
      }
      try {
        const version = migrate ? await this.#migrate(tenant, where) : null
        return await catalog.activate(slug, version)
      } catch (error) {
        await catalog.deleteTenant(slug)
        throw error
      }
    })
    if (result === undefined) throw tenantLocked(slug)
    for (const host of domains) this.#deps.resolver?.invalidateHost(host)
    this.#deps.events?.emit('tenant:attached', { slug, durationMs: performance.now() - started })
    return result.value
  }

  /**
   * Points an attached tenant at a new URL (its role's password rotated, its database moved),
   * checked as an attach checks it, and migrated there when its schema is managed. Its pools
   * are replaced: connections open on the old URL finish what they do, new ones use the new URL.
   * A refusal or a failed migration leaves it on the old URL.
   */
  async reattach (slugInput: string, url: string): Promise<TenantSummary> {
    const slug = assertSlug(slugInput)
    const { catalog } = this.#deps
    const { connection, where, serverId } = await this.#checkedUrl(url)
    const result = await catalog.withTenantLock(slug, async () => {
      const tenant = await catalog.tenantBySlug(slug)
      if (tenant === null) throw new SiloError('TENANT_NOT_FOUND', `No tenant with slug ${slug}`)
      if (!tenant.attached) throw validationFailed(`Tenant ${slug} was made by Silo: its database and credentials are Silo's own, not a URL to change`)
      const next = { serverId, host: connection.host, port: connection.port, ssl: connection.ssl, databaseName: connection.database, databaseUser: connection.user, password: connection.password ?? '' }
      try {
        await catalog.updateAttachedConnection(slug, next)
      } catch (error) {
        throw error instanceof CatalogConflict ? error.refusal(attachedAlready(where)) : error
      }
      if (tenant.schemaManaged) {
        try {
          const moved = await catalog.tenantBySlug(slug)
          if (moved !== null) await catalog.setSchemaVersion(slug, await this.#migrate(moved, where))
        } catch (error) {
          const { database, server } = tenant
          await catalog.updateAttachedConnection(slug, {
            serverId: isRegisteredServer(server) ? server.id : null,
            host: database.host ?? server.endpoint.host,
            port: database.port ?? server.endpoint.port,
            ssl: database.ssl,
            databaseName: database.name,
            databaseUser: database.user,
            password: database.password
          })
          throw error
        }
      }
      this.#deps.resolver?.invalidateTenant(tenant.id)
      this.#deps.pools?.evict(tenant.id)
      const [summary] = await catalog.listTenants([slug])
      if (summary === undefined) throw new SiloError('TENANT_NOT_FOUND', `No tenant with slug ${slug}`)
      return summary
    })
    if (result === undefined) throw tenantLocked(slug)
    return result.value
  }

  /** The URL's connection, checked (see the class comment), and the registered server at its address, if any. */
  async #checkedUrl (url: string): Promise<{ connection: PgConnection, where: string, serverId: string | null }> {
    const connection = parseConnectionUrl(url, 'The database URL')
    if (connection.password === undefined) throw validationFailed('The database URL names no password: the tenant logs in with it')
    const probe = await probeDatabase(connection)
    const where = `${connection.database} at ${connection.host}:${connection.port}`
    if (probe.superuser) {
      throw new SiloError('DATABASE_UNUSABLE', `Role ${probe.role} is a superuser: a tenant's role must reach its own database only (attach with a role that owns ${connection.database}, or has rights in it, without SUPERUSER)`)
    }
    if (probe.catalog) throw new SiloError('DATABASE_TAKEN', `The database ${where} is a Silo catalog`)
    if (probe.siloMark !== null) {
      throw new SiloError('DATABASE_TAKEN', `The database ${where} or its role was made by Silo (marked for catalog ${probe.siloMark}): a tenant, template or spare database cannot be attached`)
    }
    const server = await this.#deps.servers.atAddress(connection.host, connection.port)
    return { connection, where, serverId: server?.id ?? null }
  }

  /**
   * The tenant migrations, all in one transaction (knex runs them so when each allows it): a
   * conflict with the database's own tables rolls every one back, and the migration tables are
   * removed again when this attach made them.
   */
  async #migrate (tenant: TenantRecord, where: string): Promise<string | null> {
    const { migrator } = this.#deps
    const hadMigrationTables = await migrator.withDatabase(tenant, async (db) => {
      const { rows } = await db.raw<{ rows: Array<{ present: boolean }> }>('select to_regclass(\'knex_migrations\') is not null as present')
      return rows[0]?.present === true
    })
    try {
      return (await migrator.migrate(tenant)).after
    } catch (error) {
      if (!hadMigrationTables) {
        await migrator.withDatabase(tenant, async (db) => {
          await db.raw('drop table if exists knex_migrations_lock')
          await db.raw('drop table if exists knex_migrations')
        }).catch(() => {})
      }
      const message = (error as Error).message
      const reason = message.slice(message.lastIndexOf(' - ') + 1).replace(/^- /, '')
      if (isDuplicateDefinition(error)) {
        throw new SiloError('SCHEMA_CONFLICT', `The database ${where} has tables that conflict with the tenant migrations (${reason}); nothing was changed there. Attach it with --no-migrate to serve it as it is`, { cause: error })
      }
      if (isInsufficientPrivilege(error)) {
        throw new SiloError('DATABASE_UNUSABLE', `Role ${tenant.database.user} may not create the tenant tables in ${where} (${reason}); nothing was changed there`, { cause: error })
      }
      throw new SiloError('PROVISIONING_FAILED', `Migrating ${where} failed (${reason}); nothing was recorded`, { cause: error })
    }
  }
}

/** Logs in with the URL and reads what an attach must know; DATABASE_UNUSABLE says what failed (never the URL). */
async function probeDatabase (connection: PgConnection): Promise<Probe> {
  const db = knex(knexConfig({ connection: { ...connection, application_name: 'silo-attach', connectionTimeoutMillis: PROBE_TIMEOUT_MS }, pool: { min: 0, max: 1 }, quiet: true }))
  const where = `${connection.host}:${connection.port}`
  try {
    let row: { role: string, database: string, superuser: boolean, role_comment: string | null, comment: string | null, owner_comment: string | null, catalog: boolean } | undefined
    try {
      const { rows } = await db.raw<{ rows: Array<NonNullable<typeof row>> }>(`
        select current_user as role, current_database() as database, r.rolsuper as superuser,
               shobj_description(r.oid, 'pg_authid') as role_comment,
               shobj_description(d.oid, 'pg_database') as comment,
               shobj_description(o.oid, 'pg_authid') as owner_comment,
               to_regclass('catalog_identity') is not null as catalog
        from pg_roles r, pg_database d join pg_roles o on o.oid = d.datdba
        where r.rolname = current_user and d.datname = current_database()`)
      row = rows[0]
    } catch (error) {
      if (isLoginRefused(error)) throw new SiloError('DATABASE_UNUSABLE', `The login of role ${connection.user} at ${where} was refused (wrong password, no such role, or not allowed by pg_hba.conf)`, { cause: error })
      if (isUndefinedDatabase(error)) throw new SiloError('DATABASE_UNUSABLE', `The database ${connection.database} does not exist at ${where}`, { cause: error })
      if (isInsufficientPrivilege(error)) throw new SiloError('DATABASE_UNUSABLE', `Role ${connection.user} may not connect to the database ${connection.database} at ${where}`, { cause: error })
      throw new SiloError('DATABASE_UNUSABLE', `Nothing answers as PostgreSQL at ${where}`, { cause: error })
    }
    if (row === undefined) throw new SiloError('DATABASE_UNUSABLE', `The database ${connection.database} at ${where} could not be read`)
    const mark = databaseMark({ comment: row.comment, ownerComment: row.owner_comment }) ?? parseMark(row.role_comment)
    return { role: row.role, superuser: row.superuser, siloMark: mark === null ? null : `${mark.catalogDatabase} (id ${mark.catalogId})`, catalog: row.catalog }
  } finally {
    await db.destroy()
  }
}

/**
 * Drops an attached tenant's database (`drop --drop-database`): with its server's admin
 * connection when it is on a registered server, else logged in as its own role (which must own
 * it) from the server's `postgres` database. Only that database, by the name its entry records;
 * never its role (Silo did not make it).
 */
export async function dropAttachedDatabase (tenant: TenantRecord, servers: ServerFleet): Promise<void> {
  const name = tenant.database.name
  if (['postgres', 'template0', 'template1'].includes(name)) {
    throw new SiloError('DATABASE_TAKEN', `The database ${name} is PostgreSQL's own: it is never dropped; the tenant stays attached`)
  }
  if (!isRegisteredServer(tenant.server)) {
    const connection = { host: tenant.database.host ?? tenant.server.endpoint.host, port: tenant.database.port ?? tenant.server.endpoint.port }
    const db = knex(knexConfig({
      connection: { ...connection, ...(tenant.database.ssl === undefined || tenant.database.ssl === false ? {} : { ssl: tenant.database.ssl }), user: tenant.database.user, password: tenant.database.password, database: 'postgres', application_name: 'silo-drop', connectionTimeoutMillis: PROBE_TIMEOUT_MS },
      pool: { min: 0, max: 1 },
      quiet: true
    }))
    try {
      await db.raw('drop database if exists ?? with (force)', [name])
    } catch (error) {
      throw new SiloError('DATABASE_UNUSABLE', `The database ${name} at ${connection.host}:${connection.port} could not be dropped as role ${tenant.database.user} (${(error as Error).message}); the tenant stays attached`, { cause: error })
    } finally {
      await db.destroy()
    }
    return
  }
  const { admin, ownership } = await servers.byId(tenant.server.id)
  // Never PostgreSQL's own databases, a catalog, or anything a Silo catalog made, whatever the entry says.
  const object = await admin.databaseObject(name)
  if (object === null) return
  if (name === ownership.identity.database || databaseMark(object) !== null) {
    throw new SiloError('DATABASE_TAKEN', `The database ${name} on server ${tenant.server.name} is not the attached tenant's to drop (the catalog, or made by Silo); the tenant stays attached`)
  }
  await admin.dropDatabaseUnchecked(name)
}

/** A database attached already (its catalog entry's unique connection): the refusal of a second attach. */
const attachedAlready = (where: string) => (): SiloError => new SiloError('DATABASE_TAKEN', `The database ${where} is attached already, as another tenant`)
