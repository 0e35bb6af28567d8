import type { Knex } from 'knex'
import type { TenantRecord } from '../catalog/catalog-store.js'
import { tenantMigrations } from '../db/knex-config.js'
import type { DirectoryMigrationSource } from '../db/migration-source.js'
import { isUndefinedTable } from '../db/sqlstate.js'
import { withMigrationLock } from './migration-lock.js'
import { withTenantDatabase } from './tenant-context.js'

export interface MigrationOutcome {
  before: string | null
  after: string | null
  /** Migrations applied (or rolled back) by this call. */
  applied: string[]
}

/**
 * Runs `migrations/tenant` (and `seeds/tenant`) in one tenant's database, logged in as the
 * tenant's own role so every object it creates is owned by that role. Each call uses a
 * short-lived single-connection Knex, separate from the request pools. Migrations and rollbacks
 * of one database run one at a time, and a knex lock left by a migrator that died is cleared
 * (withMigrationLock).
 */
export class TenantMigrator {
  readonly #source: DirectoryMigrationSource

  /** Each tenant is reached on its own server (its record says where). */
  constructor (source: DirectoryMigrationSource = tenantMigrations) {
    this.#source = source
  }

  /** The newest migration the code knows: the schema version every tenant should be on. */
  async latestVersion (): Promise<string | null> {
    return await this.#source.latestName()
  }

  async migrate (tenant: TenantRecord): Promise<MigrationOutcome> {
    return await this.#migrating(tenant, async (db) => {
      const before = await currentVersion(db)
      const [, applied] = await db.migrate.latest() as [number, string[]]
      // Migrations apply in name order, so the newest applied is the new version.
      return { before, after: applied.at(-1) ?? before, applied }
    })
  }

  /** Runs `seeds/tenant` (demo data) in the tenant's database. */
  async seed (tenant: TenantRecord): Promise<void> {
    await this.withDatabase(tenant, async (db) => { await db.seed.run() })
  }

  async rollback (tenant: TenantRecord): Promise<MigrationOutcome> {
    return await this.#migrating(tenant, async (db) => {
      const before = await currentVersion(db)
      const [, applied] = await db.migrate.rollback() as [number, string[]]
      return { before, after: await currentVersion(db), applied }
    })
  }

  /** `fn` with the tenant's database as its only Silo migration (withMigrationLock). */
  async #migrating<T> (tenant: TenantRecord, fn: (db: Knex) => Promise<T>): Promise<T> {
    return await this.withDatabase(tenant, async (db) => await withMigrationLock(db, async () => await fn(db)))
  }

  /**
   * `fn` with the tenant's database, migrations configured (see withTenantDatabase). Knex's own
   * console output is muted: a failed migration is reported by the caller (a fleet run's result,
   * a create's or attach's error), once, without knex's multi-line copy of the SQL.
   */
  async withDatabase<T> (tenant: TenantRecord, fn: (db: Knex) => Promise<T>): Promise<T> {
    return await withTenantDatabase(tenant, fn, { migrations: this.#source, applicationName: `silo-migrate:${tenant.slug}`, quiet: true })
  }
}

/** The newest migration recorded in the database (null before the first), in one round trip. */
async function currentVersion (db: Knex): Promise<string | null> {
  try {
    const row = await db('knex_migrations').orderBy('name', 'desc').first<{ name: string } | undefined>('name')
    return row?.name ?? null
  } catch (error) {
    // Never migrated.
    if (isUndefinedTable(error)) return null
    throw error
  }
}
