import { randomUUID } from 'node:crypto'
import pLimit from 'p-limit'
import type { CatalogStore, TenantRecord } from '../catalog/catalog-store.js'
import type { SiloEvents } from './events.js'
import type { TenantMigrator } from './tenant-migrator.js'

export type TenantMigrationStatus = 'migrated' | 'up-to-date' | 'failed' | 'skipped'

export interface TenantMigrationResult {
  slug: string
  status: TenantMigrationStatus
  before: string | null
  after: string | null
  applied: string[]
  durationMs: number
  error?: string
}

export interface FleetMigrationOptions {
  direction?: 'latest' | 'rollback'
  concurrency: number
  /** Called as each tenant finishes, in completion order (progress output). */
  onResult?: (result: TenantMigrationResult) => void
  /** Groups this run's rows in the catalog's migration_runs; generated when absent. */
  runId?: string
  events?: SiloEvents
}

/** Tenants in these states have no schema to migrate yet, or are on their way out. */
const NOT_MIGRATABLE = new Set(['provisioning', 'dropping'])

/**
 * Migrates many tenants with bounded concurrency. Every tenant is attempted: one failure is
 * recorded in its result and never stops the others. Each result is also recorded in the
 * catalog (migration_runs). Results come back in slug order.
 */
export async function migrateFleet (
  catalog: CatalogStore,
  migrator: TenantMigrator,
  slugs: string[],
  options: FleetMigrationOptions
): Promise<TenantMigrationResult[]> {
  const limit = pLimit(Math.max(1, options.concurrency))
  const direction = options.direction ?? 'latest'
  const runId = options.runId ?? randomUUID()
  const results = await Promise.all(slugs.map(async (slug) => await limit(async () => {
    const result = await migrateOne(catalog, migrator, slug, direction)
    try {
      await catalog.recordMigrationRun({ runId, direction, ...result })
    } catch (error) {
      // The migration itself is done; losing its record must not turn it into a failure.
      result.error = [result.error, `not recorded in the catalog: ${(error as Error).message}`].filter(Boolean).join('; ')
    }
    if (result.status === 'migrated') {
      options.events?.emit('tenant:migrated', { slug, before: result.before, after: result.after, durationMs: result.durationMs })
    }
    options.onResult?.(result)
    return result
  })))
  return results.sort((a, b) => a.slug.localeCompare(b.slug))
}

async function migrateOne (
  catalog: CatalogStore,
  migrator: TenantMigrator,
  slug: string,
  direction: 'latest' | 'rollback'
): Promise<TenantMigrationResult> {
  const started = performance.now()
  const elapsed = (): number => Math.round(performance.now() - started)
  let tenant: TenantRecord | null = null
  try {
    tenant = await catalog.tenantBySlug(slug)
    if (tenant === null) {
      return { slug, status: 'failed', before: null, after: null, applied: [], durationMs: elapsed(), error: 'no such tenant' }
    }
    if (NOT_MIGRATABLE.has(tenant.status)) {
      return { slug, status: 'skipped', before: tenant.schemaVersion, after: tenant.schemaVersion, applied: [], durationMs: elapsed(), error: `tenant is ${tenant.status}` }
    }
    const outcome = direction === 'latest' ? await migrator.migrate(tenant) : await migrator.rollback(tenant)
    await catalog.setSchemaVersion(slug, outcome.after)
    return {
      slug,
      status: outcome.applied.length > 0 ? 'migrated' : 'up-to-date',
      before: outcome.before,
      after: outcome.after,
      applied: outcome.applied,
      durationMs: elapsed()
    }
  } catch (error) {
    return {
      slug,
      status: 'failed',
      before: tenant?.schemaVersion ?? null,
      after: tenant?.schemaVersion ?? null,
      applied: [],
      durationMs: elapsed(),
      error: (error as Error).message
    }
  }
}
