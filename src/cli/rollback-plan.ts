import type { Knex } from 'knex'
import pLimit from 'p-limit'
import type { TenantRecord } from '../catalog/catalog-store.js'
import { isUndefinedTable } from '../db/sqlstate.js'
import { NOT_MIGRATABLE } from '../lifecycle/fleet-migrator.js'
import type { Silo } from '../silo.js'

/** What `rollback` would do to one tenant, read without changing anything. */
export interface RollbackPlanEntry {
  slug: string
  /** Migrations of the tenant's last batch, the ones a rollback undoes, newest first. */
  undo: string[]
  /** Schema version now, and after the rollback (null: no migration left). */
  before: string | null
  after: string | null
  /** Why the tenant would not be rolled back: unknown, unreadable, or not in a migratable state. */
  problem?: string
}

/** Tenant records read from the catalog per query. */
const RECORD_CHUNK = 500

/**
 * The last batch of each tenant, as knex's rollback chooses it: every migration whose batch is
 * the highest recorded, undone newest first. Read with a plain query, not `migrate.list()`,
 * which creates the migrations table where there is none.
 */
export async function rollbackPlan (silo: Pick<Silo, 'catalog' | 'migrator'>, slugs: string[], concurrency: number): Promise<RollbackPlanEntry[]> {
  const records = new Map<string, TenantRecord>()
  for (let index = 0; index < slugs.length; index += RECORD_CHUNK) {
    for (const [slug, record] of await silo.catalog.tenantsBySlugs(slugs.slice(index, index + RECORD_CHUNK))) records.set(slug, record)
  }
  const limit = pLimit(Math.max(1, concurrency))
  const plan = await Promise.all(slugs.map(async (slug) => await limit(async (): Promise<RollbackPlanEntry> => {
    const tenant = records.get(slug)
    if (tenant === undefined) return { slug, undo: [], before: null, after: null, problem: 'no such tenant' }
    if (NOT_MIGRATABLE.has(tenant.status)) {
      return { slug, undo: [], before: tenant.schemaVersion, after: tenant.schemaVersion, problem: `tenant is ${tenant.status}` }
    }
    try {
      return { slug, ...await silo.migrator.withDatabase(tenant, lastBatch) }
    } catch (error) {
      return { slug, undo: [], before: tenant.schemaVersion, after: tenant.schemaVersion, problem: (error as Error).message }
    }
  })))
  return plan.sort((a, b) => a.slug.localeCompare(b.slug))
}

async function lastBatch (db: Knex): Promise<Omit<RollbackPlanEntry, 'slug'>> {
  let rows: Array<{ name: string, batch: number }>
  try {
    rows = await db('knex_migrations').select('name', 'batch').orderBy('id', 'desc')
  } catch (error) {
    // Never migrated, nothing to undo.
    if (isUndefinedTable(error)) return { undo: [], before: null, after: null }
    throw error
  }
  const batch = Math.max(...rows.map((row) => row.batch))
  const undo = rows.filter((row) => row.batch === batch).map((row) => row.name)
  const newest = (names: string[]): string | null => names.reduce<string | null>((max, name) => max === null || name > max ? name : max, null)
  return { undo, before: newest(rows.map((row) => row.name)), after: newest(rows.filter((row) => row.batch !== batch).map((row) => row.name)) }
}

/** The plan for a terminal: one line per tenant, then what `--yes` would do. */
export function planText (plan: RollbackPlanEntry[]): string {
  const width = Math.max(0, ...plan.map((entry) => entry.slug.length))
  const lines = plan.map((entry) => {
    const what = entry.problem !== undefined
      ? `not rolled back: ${entry.problem}`
      : entry.undo.length === 0
        ? 'nothing to undo'
        : `undo ${entry.undo.join(', ')} (${entry.before ?? '(none)'} -> ${entry.after ?? '(none)'})`
    return `${entry.slug.padEnd(width)}  ${what}`
  })
  const undoing = plan.filter((entry) => entry.problem === undefined && entry.undo.length > 0).length
  return [...lines, `rollback would undo the last migration batch of ${undoing} of ${plan.length} tenants (this can drop tables and their data)`].join('\n')
}
