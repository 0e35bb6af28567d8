import { randomUUID } from 'node:crypto'
import pLimit from 'p-limit'
import type { CatalogStore, TenantRecord, TenantStatus } from '../catalog/catalog-store.js'
import type { MigrationDirection, MigrationOutcome } from '../catalog/migration-runs.js'
import type { SiloEvents } from '../events.js'
import type { TenantMigrator } from './tenant-migrator.js'

export type TenantMigrationStatus = MigrationOutcome

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
  direction?: MigrationDirection
  /** Tenants migrated at once on each server: the servers of a fleet are worked on side by side. */
  concurrency: number
  /** Called as each tenant finishes, in completion order (progress output). */
  onResult?: (result: TenantMigrationResult) => void
  /** Groups this run's rows in the catalog's migration_runs; generated when absent. */
  runId?: string
  events?: SiloEvents
  /** Once aborted, no further tenant is started (those under way finish); the others get no result. */
  signal?: AbortSignal
}

/** Tenant records read from the catalog per query. */
const RECORD_CHUNK = 500

/** Tenants in these states have no schema to migrate yet, or are on their way out. */
export const NOT_MIGRATABLE: ReadonlySet<TenantStatus> = new Set<TenantStatus>(['provisioning', 'dropping'])

/**
 * Migrates many tenants, `concurrency` at a time on each of their servers (a server's own load
 * bounds what it takes; one slow server does not hold the others back). Every tenant is
 * attempted: one failure is recorded in its result and never stops the others. Each result is
 * also recorded in the catalog (migration_runs). Results come back in slug order; a run stopped
 * by `signal` returns the results of the tenants it attempted.
 */
export async function migrateFleet (
  catalog: CatalogStore,
  migrator: TenantMigrator,
  slugs: string[],
  options: FleetMigrationOptions
): Promise<TenantMigrationResult[]> {
  const runId = options.runId ?? randomUUID()
  // Slugs with no tenant make a group of their own: each fails as `no such tenant`.
  const servers = await catalog.serverIdsOf(slugs)
  const groups = new Map<string, string[]>()
  for (const slug of slugs) {
    const server = servers.get(slug) ?? ''
    const group = groups.get(server)
    if (group === undefined) groups.set(server, [slug])
    else group.push(slug)
  }
  const results = await Promise.all([...groups.values()].map(async (group) => await migrateGroup(catalog, migrator, group, { ...options, runId })))
  return results.flat().sort((a, b) => a.slug.localeCompare(b.slug))
}

/** The tenants of one server, `concurrency` at a time, their records read a chunk at a time. */
async function migrateGroup (
  catalog: CatalogStore,
  migrator: TenantMigrator,
  slugs: string[],
  options: FleetMigrationOptions & { runId: string }
): Promise<TenantMigrationResult[]> {
  const limit = pLimit(Math.max(1, options.concurrency))
  const direction = options.direction ?? 'latest'
  const { runId, signal } = options
  // Tenant records are read a chunk at a time, one query each, as the run reaches them.
  const chunks = new Map<number, Promise<Map<string, TenantRecord>>>()
  const recordOf = async (index: number): Promise<TenantRecord | null> => {
    const chunk = Math.floor(index / RECORD_CHUNK)
    let records = chunks.get(chunk)
    if (records === undefined) {
      records = catalog.tenantsBySlugs(slugs.slice(chunk * RECORD_CHUNK, (chunk + 1) * RECORD_CHUNK))
      chunks.set(chunk, records)
      chunks.delete(chunk - 2)
    }
    return (await records).get(slugs[index] ?? '') ?? null
  }
  const results = await Promise.all(slugs.map(async (slug, index) => await limit(async () => {
    if (signal?.aborted === true) return undefined
    const result = await migrateOne(await recordOf(index).catch(() => undefined), migrator, slug, direction)
    const succeeded = result.status === 'migrated' || result.status === 'up-to-date'
    try {
      await catalog.runs.record({ runId, direction, ...result }, succeeded ? { version: result.after } : undefined)
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
  return results.filter((result) => result !== undefined)
}

/** `tenant` is undefined when its record could not be read (catalog error), null when there is none. */
async function migrateOne (
  tenant: TenantRecord | null | undefined,
  migrator: TenantMigrator,
  slug: string,
  direction: MigrationDirection
): Promise<TenantMigrationResult> {
  const started = performance.now()
  const elapsed = (): number => Math.round(performance.now() - started)
  try {
    if (tenant === undefined) {
      return { slug, status: 'failed', before: null, after: null, applied: [], durationMs: elapsed(), error: 'the catalog could not be read' }
    }
    if (tenant === null) {
      return { slug, status: 'failed', before: null, after: null, applied: [], durationMs: elapsed(), error: 'no such tenant' }
    }
    if (NOT_MIGRATABLE.has(tenant.status)) {
      return { slug, status: 'skipped', before: tenant.schemaVersion, after: tenant.schemaVersion, applied: [], durationMs: elapsed(), error: `tenant is ${tenant.status}` }
    }
    if (!tenant.schemaManaged) {
      return { slug, status: 'skipped', before: tenant.schemaVersion, after: tenant.schemaVersion, applied: [], durationMs: elapsed(), error: 'its schema is its own (attached with --no-migrate)' }
    }
    const outcome = direction === 'latest' ? await migrator.migrate(tenant) : await migrator.rollback(tenant)
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
