import type { Knex } from 'knex'

/** Which way a fleet migration goes: to the newest migration, or back by the last batch. */
export const MIGRATION_DIRECTIONS = ['latest', 'rollback'] as const
export type MigrationDirection = typeof MIGRATION_DIRECTIONS[number]

/** How one tenant's migration ended (stored in migration_runs.status). */
export const MIGRATION_OUTCOMES = ['migrated', 'up-to-date', 'failed', 'skipped'] as const
export type MigrationOutcome = typeof MIGRATION_OUTCOMES[number]

export interface MigrationRunRecord {
  runId: string
  slug: string
  direction: MigrationDirection
  status: MigrationOutcome
  before: string | null
  after: string | null
  applied: string[]
  durationMs: number
  error?: string
  finishedAt?: Date
}

/**
 * The catalog's migration_runs table: one row per tenant per migration attempt (fleet runs,
 * single-tenant migrations and rollbacks), with its status, versions, duration and error.
 */
export class MigrationRunLog {
  readonly #knex: Knex

  constructor (knex: Knex) {
    this.#knex = knex
  }

  /**
   * Records a migration attempt; with `schemaVersion`, also sets the tenant's version, in the
   * same statement (one round trip and one commit per tenant of a fleet run).
   */
  async record (run: MigrationRunRecord, schemaVersion?: { version: string | null }): Promise<void> {
    if (schemaVersion !== undefined) {
      await this.#knex.raw(`
        with updated as (
          update tenants set schema_version = ?, updated_at = now() where slug = ? returning id
        )
        insert into migration_runs (run_id, tenant_id, slug, direction, status, version_before, version_after, applied, duration_ms, error)
        select ?, (select id from updated), ?, ?, ?, ?, ?, ?, ?, ?`, [
        schemaVersion.version, run.slug,
        run.runId, run.slug, run.direction, run.status, run.before, run.after, run.applied, run.durationMs, run.error ?? null
      ])
      return
    }
    await this.#knex('migration_runs').insert({
      run_id: run.runId,
      tenant_id: this.#knex('tenants').where({ slug: run.slug }).select('id'),
      slug: run.slug,
      direction: run.direction,
      status: run.status,
      version_before: run.before,
      version_after: run.after,
      applied: run.applied,
      duration_ms: run.durationMs,
      error: run.error ?? null
    })
  }

  /** The newest recorded migration attempts, newest first (of one tenant when a slug is given). */
  async list (options: { slug?: string, runId?: string, limit?: number } = {}): Promise<MigrationRunRecord[]> {
    const query = this.#knex<MigrationRunRow>('migration_runs').orderBy('id', 'desc').limit(options.limit ?? 100)
    if (options.slug !== undefined) query.where({ slug: options.slug })
    if (options.runId !== undefined) query.where({ run_id: options.runId })
    return (await query).map(toRecord)
  }

  /** One run's tenant results, failures first, then the most recently finished: `limit` of them. */
  async ofRun (runId: string, limit: number): Promise<MigrationRunRecord[]> {
    const rows = await this.#knex<MigrationRunRow>('migration_runs').where({ run_id: runId }).orderByRaw('(status = \'failed\') desc, id desc').limit(limit)
    return rows.map(toRecord)
  }
}

interface MigrationRunRow {
  run_id: string
  slug: string
  direction: MigrationDirection
  status: MigrationOutcome
  version_before: string | null
  version_after: string | null
  applied: string[]
  duration_ms: number
  error: string | null
  finished_at: Date
}

function toRecord (row: MigrationRunRow): MigrationRunRecord {
  return {
    runId: row.run_id,
    slug: row.slug,
    direction: row.direction,
    status: row.status,
    before: row.version_before,
    after: row.version_after,
    applied: row.applied,
    durationMs: row.duration_ms,
    ...(row.error === null ? {} : { error: row.error }),
    finishedAt: row.finished_at
  }
}
