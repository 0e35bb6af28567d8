import knex, { type Knex } from 'knex'
import { unreadableCredential, type TenantRecord } from '../catalog/catalog-store.js'
import { tenantConnection } from '../catalog/tenant-connection.js'
import { knexConfig } from '../db/knex-config.js'
import type { DirectoryMigrationSource } from '../db/migration-source.js'
import { tenantUnavailable } from '../errors.js'

export interface TenantContextOptions {
  /** Tenant migrations (default: migrations/tenant), for `db.migrate`. */
  migrations?: DirectoryMigrationSource
  /** Seen in pg_stat_activity (default `silo-context:<slug>`). */
  applicationName?: string
  /** Mute knex's console logging (callers that report failures themselves, such as the migrator). */
  quiet?: boolean
}

/**
 * Runs `fn` with a Knex bound to `tenant`'s database only, logged in as the tenant's own role (so
 * whatever it creates is the tenant's), on one connection of its own that is closed when `fn`
 * settles: django-tenants' `tenant_context`. Migrations, seeds, `tenants run` and
 * `silo.withTenant` (for an embedding application's jobs) all go through here. The connection is
 * outside the request pools and their budget: meant for jobs and commands, not for requests.
 */
export async function withTenantDatabase<T> (tenant: TenantRecord, fn: (db: Knex) => Promise<T>, options: TenantContextOptions = {}): Promise<T> {
  // A password this instance cannot decrypt would fail as a bad login: say why instead.
  const unreadable = unreadableCredential(tenant)
  if (unreadable !== undefined) throw tenantUnavailable(`The credential of tenant ${tenant.slug} cannot be read: ${unreadable.message}`, unreadable)
  const db = knex(knexConfig({
    schema: 'tenant',
    ...(options.migrations === undefined ? {} : { migrationSource: options.migrations }),
    connection: tenantConnection(tenant, options.applicationName ?? `silo-context:${tenant.slug}`),
    pool: { min: 0, max: 1 },
    ...(options.quiet === true ? { quiet: true } : {}),
    ...(tenant.server.version === null ? {} : { serverVersion: tenant.server.version })
  }))
  try {
    return await fn(db)
  } finally {
    await db.destroy()
  }
}
