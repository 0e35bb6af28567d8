import { randomUUID } from 'node:crypto'
import type { CatalogStore } from '../catalog/catalog-store.js'
import type { FleetMigrationRecord, FleetOrigin } from '../catalog/fleet-migrations.js'
import type { MigrationDirection } from '../catalog/migration-runs.js'
import { migrationRunning, SiloError } from '../errors.js'
import type { SiloEvents } from '../events.js'
import { migrateFleet, type TenantMigrationResult } from './fleet-migrator.js'
import type { TenantMigrator } from './tenant-migrator.js'

export interface FleetMigrationsDeps {
  catalog: CatalogStore
  migrator: TenantMigrator
  events: SiloEvents
}

export interface FleetRunOptions {
  direction?: MigrationDirection
  /** Tenants at once on each server (MIGRATE_CONCURRENCY, or the CLI's --concurrency). */
  concurrency: number
  origin: FleetOrigin
  /** Called as each tenant finishes (the CLI's lines and progress bar). */
  onResult?: (result: TenantMigrationResult) => void
  /** Every tenant's slug, when the caller listed them already (the CLI, to lay out its lines); else the run lists them. */
  fleet?: string[]
}

/** running: under way in some process; done: every tenant attempted, none failed; failed: one failed, or the run stopped early. */
export type FleetRunStatus = 'running' | 'done' | 'failed'

export interface FleetRunState extends FleetMigrationRecord {
  status: FleetRunStatus
}

/** A finished run: its record, and each tenant's result in slug order. */
export interface FleetRunEnd {
  run: FleetRunState
  results: TenantMigrationResult[]
}

/** The catalog lock a fleet migration holds from its start to its end, whichever process runs it. */
const FLEET_LOCK = 'migrations:fleet'
const INTERRUPTED = 'interrupted: the process running it stopped'

/**
 * Fleet migrations as a resource, for the CLI (`migrate --all`, `rollback --all --yes`) and the
 * admin API (`POST /migrations`) alike: one run at a time in the whole deployment (a catalog
 * lock), each recorded in fleet_migrations with its tenants' results in migration_runs as they
 * finish, so every process reads the same runs. A run started here goes on after `start`
 * resolves; closing stops it between tenants (those under way finish) and records it stopped.
 */
export class FleetMigrations {
  readonly #deps: FleetMigrationsDeps
  readonly #running = new Set<Promise<unknown>>()
  readonly #stop = new AbortController()

  constructor (deps: FleetMigrationsDeps) {
    this.#deps = deps
  }

  /**
   * Starts a run over every tenant: resolves once it is recorded, with `done` settling when it
   * ends. Refused with MIGRATION_RUNNING while another run is under way anywhere.
   */
  async start (options: FleetRunOptions): Promise<{ run: FleetRunState, done: Promise<FleetRunEnd> }> {
    if (this.#stop.signal.aborted) throw new SiloError('SHUTTING_DOWN', 'This instance is shutting down')
    const { catalog } = this.#deps
    let started: (run: FleetRunState) => void = () => {}
    const recorded = new Promise<FleetRunState>((resolve) => { started = resolve })
    const run = catalog.withTryLock(FLEET_LOCK, async () => await this.#run(options, started)).then(async (result) => {
      if (result === undefined) throw migrationRunning((await catalog.fleetMigrations.unfinished())[0]?.id)
      return result.value
    })
    this.#running.add(run)
    void run.catch(() => {}).finally(() => this.#running.delete(run))
    const first = await Promise.race([recorded, run])
    return { run: 'results' in first ? first.run : first, done: run }
  }

  /** A run with its status now (null: no run of that id). */
  async get (id: string): Promise<FleetRunState | null> {
    const { catalog } = this.#deps
    const record = await catalog.fleetMigrations.byId(id)
    if (record === null) return null
    if (record.finishedAt !== null || await catalog.lockHeld(FLEET_LOCK)) return withStatus(record)
    // Not ended and no one runs a fleet migration: stopped with its process, unless it ended meanwhile.
    return withStatus(await catalog.fleetMigrations.byId(id) ?? record, true)
  }

  /** The newest runs first, with their status now. */
  async recent (limit: number): Promise<FleetRunState[]> {
    const { catalog } = this.#deps
    const records = await catalog.fleetMigrations.recent(limit)
    const held = records.some((record) => record.finishedAt === null) && await catalog.lockHeld(FLEET_LOCK)
    return records.map((record) => withStatus(record, !held))
  }

  /** Stops this process's runs between tenants, and waits for them to record their end. */
  async close (): Promise<void> {
    this.#stop.abort()
    await Promise.allSettled([...this.#running])
  }

  async #run (options: FleetRunOptions, started: (run: FleetRunState) => void): Promise<FleetRunEnd> {
    const { catalog, migrator, events } = this.#deps
    const direction = options.direction ?? 'latest'
    // Under the lock no run is under way: a row that never ended was stopped with its process.
    await catalog.fleetMigrations.closeInterrupted()
    const slugs = options.fleet ?? (await catalog.listTenants()).map((tenant) => tenant.slug)
    const record = await catalog.fleetMigrations.start({ id: randomUUID(), direction, origin: options.origin, tenants: slugs.length, concurrency: options.concurrency })
    started(withStatus(record))
    const began = performance.now()
    let results: TenantMigrationResult[] = []
    let error: string | undefined
    try {
      results = await migrateFleet(catalog, migrator, slugs, {
        direction,
        concurrency: options.concurrency,
        runId: record.id,
        events,
        signal: this.#stop.signal,
        ...(options.onResult === undefined ? {} : { onResult: options.onResult })
      })
      if (results.length < slugs.length) error = `stopped: the instance shut down after ${results.length} of ${slugs.length} tenants`
    } catch (failure) {
      error = `stopped: ${(failure as Error).message}`
    }
    const count = (status: TenantMigrationResult['status']): number => results.filter((result) => result.status === status).length
    const counts = { migrated: count('migrated'), upToDate: count('up-to-date'), skipped: count('skipped'), failed: count('failed') }
    const durationMs = Math.round(performance.now() - began)
    await catalog.fleetMigrations.finish(record.id, { counts, durationMs, ...(error === undefined ? {} : { error }) })
    const end = await catalog.fleetMigrations.byId(record.id) ?? record
    return { run: withStatus(end), results }
  }
}

/** `orphaned`: the run's row has not ended and no process holds the fleet lock (its process stopped). */
function withStatus (record: FleetMigrationRecord, orphaned = false): FleetRunState {
  if (record.finishedAt === null) {
    return orphaned ? { ...record, status: 'failed', error: record.error ?? INTERRUPTED } : { ...record, status: 'running' }
  }
  return { ...record, status: record.error !== null || record.counts.failed > 0 ? 'failed' : 'done' }
}
