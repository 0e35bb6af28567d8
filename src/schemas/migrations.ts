import { Type, type Static } from '@sinclair/typebox'
import { FLEET_ORIGINS } from '../catalog/fleet-migrations.js'
import { MIGRATION_DIRECTIONS, MIGRATION_OUTCOMES, type MigrationRunRecord } from '../catalog/migration-runs.js'
import type { FleetRunState } from '../lifecycle/fleet-migrations.js'

const Uuid = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
const Direction = Type.Union(MIGRATION_DIRECTIONS.map((direction) => Type.Literal(direction)), { description: 'latest: to the newest migration; rollback: the last batch undone (CLI only)' })

/** One tenant's migration attempt, as migration_runs records it (the CLI's `--json` result, with its run). */
export const TenantMigrationView = Type.Object({
  runId: Type.String({ format: 'uuid', description: 'the run it belongs to: a fleet migration\'s id (GET /migrations/:id), or a run of its own' }),
  slug: Type.String(),
  direction: Direction,
  status: Type.Union(MIGRATION_OUTCOMES.map((status) => Type.Literal(status)), { description: 'migrated or up-to-date: on the newest schema; failed: still on its version before (error says why); skipped: provisioning, being dropped, or attached with a schema of its own' }),
  before: Type.Union([Type.String(), Type.Null()], { description: 'its schema version before' }),
  after: Type.Union([Type.String(), Type.Null()], { description: 'its schema version after' }),
  applied: Type.Array(Type.String(), { description: 'migrations applied (or rolled back) by this attempt' }),
  durationMs: Type.Integer(),
  error: Type.Union([Type.String(), Type.Null()]),
  finishedAt: Type.String({ format: 'date-time' })
}, { title: 'TenantMigration' })
export type TenantMigrationView = Static<typeof TenantMigrationView>

export const TenantMigrationList = Type.Object({ items: Type.Array(TenantMigrationView) }, { title: 'TenantMigrationList' })

/** The one public shape of a fleet migration, for the admin API (and whoever reads it for the CLI's runs). */
export const FleetMigrationView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  direction: Direction,
  origin: Type.Union(FLEET_ORIGINS.map((origin) => Type.Literal(origin)), { description: 'who started it: the tenants CLI (migrate --all) or the admin API (POST /migrations)' }),
  status: Type.Union([Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')], { description: 'running; done: every tenant attempted and none failed; failed: a tenant failed, or the run stopped early (error says why)' }),
  concurrency: Type.Integer({ description: 'tenants at once on each server' }),
  progress: Type.Object({
    total: Type.Integer({ description: 'tenants the run set out to attempt' }),
    done: Type.Integer({ description: 'tenants with a result so far' }),
    failed: Type.Integer({ description: 'of those, failed' })
  }),
  summary: Type.Union([Type.Object({
    tenants: Type.Integer({ description: 'tenants attempted' }),
    migrated: Type.Integer(),
    upToDate: Type.Integer(),
    skipped: Type.Integer(),
    failed: Type.Integer(),
    durationMs: Type.Union([Type.Integer(), Type.Null()], { description: 'null for a run interrupted with its process' })
  }), Type.Null()], { description: 'once it ended (null while running): what its tenants\' results add up to, as `migrate --json` prints it' }),
  error: Type.Union([Type.String(), Type.Null()], { description: 'why it ended before every tenant was attempted (its instance shut down, its process stopped)' }),
  startedAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()])
}, { title: 'FleetMigration' })
export type FleetMigrationView = Static<typeof FleetMigrationView>

export const FleetMigrationDetail = Type.Composite([FleetMigrationView, Type.Object({
  results: Type.Array(TenantMigrationView, { description: 'its tenants\' results as they finish: failures first, then the most recent; `limit` of them' })
})], { title: 'FleetMigrationDetail' })
export type FleetMigrationDetail = Static<typeof FleetMigrationDetail>

export const FleetMigrationList = Type.Object({ items: Type.Array(FleetMigrationView) }, { title: 'FleetMigrationList' })
export const FleetMigrationParams = Type.Object({ id: Type.String({ pattern: Uuid, description: 'the id POST /migrations answered' }) })
export const FleetMigrationQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'tenant results to include, failures first' })
}, { additionalProperties: false })
export const FleetMigrationListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'runs, newest first' })
}, { additionalProperties: false })

export function tenantMigrationView (run: MigrationRunRecord): TenantMigrationView {
  return {
    runId: run.runId,
    slug: run.slug,
    direction: run.direction,
    status: run.status,
    before: run.before,
    after: run.after,
    applied: run.applied,
    durationMs: run.durationMs,
    error: run.error ?? null,
    finishedAt: (run.finishedAt ?? new Date()).toISOString()
  }
}

export function fleetMigrationView (run: FleetRunState): FleetMigrationView {
  const { counts } = run
  return {
    id: run.id,
    direction: run.direction,
    origin: run.origin,
    status: run.status,
    concurrency: run.concurrency,
    progress: { total: run.tenants, done: counts.done, failed: counts.failed },
    summary: run.status === 'running'
      ? null
      : { tenants: counts.done, migrated: counts.migrated, upToDate: counts.upToDate, skipped: counts.skipped, failed: counts.failed, durationMs: run.durationMs },
    error: run.error,
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt === null ? null : run.finishedAt.toISOString()
  }
}
