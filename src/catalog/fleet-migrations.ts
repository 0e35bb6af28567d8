import type { Knex } from 'knex'
import type { MigrationDirection, MigrationOutcome } from './migration-runs.js'

/** Who started a fleet migration: the tenants command line, or the admin API. */
export const FLEET_ORIGINS = ['cli', 'api'] as const
export type FleetOrigin = typeof FLEET_ORIGINS[number]

/** What a finished run counted, tenant by tenant (the CLI's summary line). */
export interface FleetCounts {
  migrated: number
  upToDate: number
  skipped: number
  failed: number
}

export interface FleetMigrationRecord {
  id: string
  direction: MigrationDirection
  origin: FleetOrigin
  /** Tenants the run set out to attempt. */
  tenants: number
  concurrency: number
  startedAt: Date
  finishedAt: Date | null
  /** Tenants that have a result so far (every status), and what those results are. */
  counts: FleetCounts & { done: number }
  durationMs: number | null
  /** Why the run ended before every tenant was attempted (stopped, interrupted). */
  error: string | null
}

interface FleetMigrationRow {
  id: string
  direction: MigrationDirection
  origin: FleetOrigin
  tenants: number
  concurrency: number
  started_at: Date
  finished_at: Date | null
  migrated: number | null
  up_to_date: number | null
  skipped: number | null
  failed: number | null
  duration_ms: number | null
  error: string | null
}

/**
 * The catalog's fleet migrations (fleet_migrations), each the group of its tenants' rows in
 * migration_runs (run_id = its id). See the fleet_migrations migration.
 */
export class FleetMigrationLog {
  readonly #knex: Knex

  constructor (knex: Knex) {
    this.#knex = knex
  }

  async start (run: { id: string, direction: MigrationDirection, origin: FleetOrigin, tenants: number, concurrency: number }): Promise<FleetMigrationRecord> {
    const [row] = await this.#knex<FleetMigrationRow>('fleet_migrations').insert(run).returning('*')
    if (row === undefined) throw new Error('insert returned no row')
    return toRecord(row, new Map())
  }

  /** Records the end of a run: its counts and duration, and why it stopped early if it did. */
  async finish (id: string, end: { counts: FleetCounts, durationMs: number, error?: string }): Promise<void> {
    const { migrated, upToDate, skipped, failed } = end.counts
    await this.#knex('fleet_migrations').where({ id }).update({
      finished_at: this.#knex.fn.now(), migrated, up_to_date: upToDate, skipped, failed, duration_ms: end.durationMs, error: end.error ?? null
    })
  }

  /**
   * Ends every run whose row never ended: called under the fleet lock, where no run can be under
   * way, so each was stopped with its process. Its counts are what its tenants recorded.
   */
  async closeInterrupted (): Promise<void> {
    await this.#knex.raw(`
      update fleet_migrations f set finished_at = now(), error = 'interrupted: the process running it stopped',
        migrated = c.migrated, up_to_date = c.up_to_date, skipped = c.skipped, failed = c.failed
      from (
        select u.id,
          count(r.id) filter (where r.status = 'migrated')::int as migrated,
          count(r.id) filter (where r.status = 'up-to-date')::int as up_to_date,
          count(r.id) filter (where r.status = 'skipped')::int as skipped,
          count(r.id) filter (where r.status = 'failed')::int as failed
        from fleet_migrations u left join migration_runs r on r.run_id = u.id
        where u.finished_at is null group by u.id
      ) c
      where f.id = c.id`)
  }

  async byId (id: string): Promise<FleetMigrationRecord | null> {
    const row = await this.#knex<FleetMigrationRow>('fleet_migrations').where({ id }).first()
    if (row === undefined) return null
    return toRecord(row, await this.#liveCounts([row]))
  }

  /** The newest runs first. */
  async recent (limit: number): Promise<FleetMigrationRecord[]> {
    const rows = await this.#knex<FleetMigrationRow>('fleet_migrations').orderBy('started_at', 'desc').orderBy('id').limit(limit)
    const live = await this.#liveCounts(rows)
    return rows.map((row) => toRecord(row, live))
  }

  /** The runs whose row has not ended (running now, or stopped with their process). */
  async unfinished (): Promise<FleetMigrationRecord[]> {
    const rows = await this.#knex<FleetMigrationRow>('fleet_migrations').whereNull('finished_at').orderBy('started_at', 'desc')
    const live = await this.#liveCounts(rows)
    return rows.map((row) => toRecord(row, live))
  }

  /** The results so far of the runs that have not ended, counted from migration_runs, in one query. */
  async #liveCounts (rows: FleetMigrationRow[]): Promise<Map<string, Map<MigrationOutcome, number>>> {
    const open = rows.filter((row) => row.finished_at === null).map((row) => row.id)
    const counts = new Map<string, Map<MigrationOutcome, number>>()
    if (open.length === 0) return counts
    const found = await this.#knex('migration_runs').whereIn('run_id', open).groupBy('run_id', 'status')
      .select('run_id', 'status', this.#knex.raw('count(*)::int as n')) as Array<{ run_id: string, status: MigrationOutcome, n: number }>
    for (const { run_id: runId, status, n } of found) {
      const of = counts.get(runId) ?? new Map<MigrationOutcome, number>()
      of.set(status, n)
      counts.set(runId, of)
    }
    return counts
  }
}

function toRecord (row: FleetMigrationRow, live: Map<string, Map<MigrationOutcome, number>>): FleetMigrationRecord {
  const counted = live.get(row.id)
  const count = (stored: number | null, status: MigrationOutcome): number => stored ?? counted?.get(status) ?? 0
  const counts = {
    migrated: count(row.migrated, 'migrated'),
    upToDate: count(row.up_to_date, 'up-to-date'),
    skipped: count(row.skipped, 'skipped'),
    failed: count(row.failed, 'failed')
  }
  return {
    id: row.id,
    direction: row.direction,
    origin: row.origin,
    tenants: row.tenants,
    concurrency: row.concurrency,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    counts: { ...counts, done: counts.migrated + counts.upToDate + counts.skipped + counts.failed },
    durationMs: row.duration_ms,
    error: row.error
  }
}
