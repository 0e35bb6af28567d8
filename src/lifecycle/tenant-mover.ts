import type pg from 'pg'
import type { CatalogStore, TenantRecord } from '../catalog/catalog-store.js'
import type { HostResolver } from '../catalog/host-resolver.js'
import type { MoveRecord } from '../catalog/tenant-moves.js'
import { isLockTimeout } from '../db/sqlstate.js'
import { copySequences, tenantSequences, tenantTables, type TenantTable } from '../db/tenant-tables.js'
import { SiloError, tenantLocked } from '../errors.js'
import type { SiloEvents } from '../events.js'
import type { PoolCache } from '../tenancy/pool-cache.js'
import { catchUp, catchUpUntilQuiet, copyTables, installCapture, removeCapture } from './change-capture.js'
import { checkMove, type MovePlan } from './move-checks.js'
import { closeAll, connect, onServer, quiesce } from './move-sessions.js'
import type { ServerFleet } from './server-fleet.js'
import type { TenantMigrator } from './tenant-migrator.js'

export type MoveStep = 'target' | 'capture' | 'copy' | 'catch-up' | 'freeze' | 'switch' | 'drop-source'

export interface TenantMoverDeps {
  catalog: CatalogStore
  servers: ServerFleet
  migrator: TenantMigrator
  /** The longest a freeze lasts (MOVE_HOLD_MS): requests wait that long at most, and a switch not made by then is given up and tried again. */
  holdMs: number
  /** Called before each step; a fault-injection seam for tests (a throw here is that step failing), as for the provisioner. */
  beforeStep?: (step: MoveStep, slug: string) => Promise<void> | void
  resolver?: HostResolver
  pools?: PoolCache
  events?: SiloEvents
}

export interface MoveOptions {
  /** The server's name. */
  to: string
  /** Keep the source database (connections refused, no longer served) instead of dropping it. */
  keepSource?: boolean
  /** Told each phase and figure as the move goes. */
  onProgress?: (move: MoveRecord) => void
}

/** Freezes tried before a move gives up (each after more catching up). */
const FREEZE_ATTEMPTS = 3

/** Longest wait, once frozen, for the statements under way on the source to end before its tables are locked. */
const QUIESCE_MAX_MS = 100
/** How long a freeze waits for the feed to reach the instances before it looks for statements under way. */
const FEED_SETTLE_MS = 20

class FreezeLapsed extends Error {}

/**
 * Moves a tenant's database to another server while it serves: the target made from the
 * server's template at the tenant's schema version, the rows copied with COPY from a snapshot
 * while a trigger notes every row written meanwhile (change-capture.ts), the notes applied until
 * few are left, then a short write freeze: the catalog freezes the tenant (every instance holds
 * its requests), the source's tables are locked, the last notes and the sequences are carried
 * over, and the catalog switches the tenant to the target in the same breath as it lifts the
 * freeze. Only then are the source's sessions ended and the source dropped (or kept, closed to
 * connections). Everything before the switch is undone on failure, and a mover that dies leaves
 * a freeze that lapses by itself and a half-made target `doctor` removes.
 */
export class TenantMover {
  readonly #deps: TenantMoverDeps
  readonly #running = new Set<Promise<unknown>>()
  #closed = false

  constructor (deps: TenantMoverDeps) {
    this.#deps = deps
  }

  /** Moves the tenant and resolves with the finished move (MOVE_FAILED when it stopped before its switch). */
  async move (slug: string, options: MoveOptions): Promise<MoveRecord> {
    const { done } = await this.start(slug, options)
    return await done
  }

  /**
   * Checks the move and starts it: resolves with its record once every check passed (refusals
   * reject here), with `done` settling when it ends. The tenant's lock is held throughout.
   */
  async start (slug: string, options: MoveOptions): Promise<{ move: MoveRecord, done: Promise<MoveRecord> }> {
    if (this.#closed) throw new SiloError('SHUTTING_DOWN', 'This instance is shutting down')
    const { catalog } = this.#deps
    let started: (move: MoveRecord) => void = () => {}
    const checked = new Promise<MoveRecord>((resolve) => { started = resolve })
    const run = catalog.withTenantLock(slug, async () => {
      const plan = await checkMove(this.#deps, slug, options.to)
      const move = await catalog.moves.start({ tenantId: plan.tenant.id, slug, from: plan.source.name, to: plan.target.name, keepSource: options.keepSource === true })
      started(move)
      return await this.#run(plan, move, options)
    }).then((result) => {
      if (result === undefined) throw tenantLocked(slug)
      return result.value
    })
    this.#running.add(run)
    void run.catch(() => {}).finally(() => this.#running.delete(run))
    const move = await Promise.race([checked, run])
    return { move, done: run }
  }

  /** Lets running moves end (each stops at its next step and undoes what it made) and refuses new ones. */
  async close (): Promise<void> {
    this.#closed = true
    await Promise.allSettled([...this.#running])
  }

  async #run (plan: MovePlan, move: MoveRecord, options: MoveOptions): Promise<MoveRecord> {
    const { catalog, events } = this.#deps
    const { tenant, source, target } = plan
    const began = performance.now()
    let current = move
    const progress = async (change: Partial<MoveRecord>): Promise<void> => {
      current = { ...current, ...change, updatedAt: new Date() }
      await catalog.moves.update(move.id, change)
      options.onProgress?.(current)
    }
    const made = { target: false, capture: false }
    const clients: pg.Client[] = []
    let tables: TenantTable[] = []
    let switched = false
    try {
      await this.#step('target', tenant.slug)
      made.target = true
      await this.#makeTarget(plan)
      const from = await connect(source, tenant, clients)
      const to = await connect(target, tenant, clients)
      tables = await tenantTables(from)
      const keyless = tables.filter((table) => table.primaryKey.length === 0).map((table) => table.name)
      if (keyless.length > 0) throw new SiloError('MOVE_REFUSED', `Tenant ${tenant.slug} cannot be moved: these tables have no primary key: ${keyless.join(', ')}`)
      const sequences = await tenantSequences(from)
      await this.#step('capture', tenant.slug)
      made.capture = true
      await installCapture(from, tables, this.#deps.holdMs)
      await this.#step('copy', tenant.slug)
      await progress({ phase: 'copying' })
      await from.query('begin isolation level repeatable read read only')
      const rowsCopied = await copyTables(from, to, tables)
      await from.query('commit')
      await progress({ phase: 'catching-up', rowsCopied })
      let applied = 0
      for (let attempt = 1; ; attempt++) {
        await this.#step('catch-up', tenant.slug)
        applied += await catchUpUntilQuiet(from, to, tables, () => { this.#checkOpen() })
        await progress({ changesApplied: applied })
        await this.#step('freeze', tenant.slug)
        await progress({ phase: 'frozen' })
        const freeze = await this.#freezeAndSwitch(plan, move, from, to, tables, sequences)
        applied += freeze.applied
        if (freeze.switched) {
          switched = true
          await progress({ phase: 'switched', changesApplied: applied, freezeMs: Math.round(freeze.ms) })
          break
        }
        await progress({ phase: 'catching-up', changesApplied: applied, freezeMs: Math.round(freeze.ms) })
        if (attempt === FREEZE_ATTEMPTS) {
          throw new SiloError('MOVE_FAILED', `Tenant ${tenant.slug} was not moved: its writes could not be frozen within MOVE_HOLD_MS (${this.#deps.holdMs} ms) in ${FREEZE_ATTEMPTS} attempts; it is served from ${source.name} as before`)
        }
      }
      this.#forget(tenant)
      await this.#step('drop-source', tenant.slug)
      await this.#retireSource(plan, options.keepSource === true, from, tables)
    } catch (error) {
      await closeAll(clients)
      if (switched) {
        // The tenant is on its new server: only the old copy's removal failed (doctor finds it).
        await progress({ phase: 'done', error: `the source database was not removed: ${(error as Error).message}` }).catch(() => {})
        return current
      }
      const message = error instanceof Error ? error.message : String(error)
      await this.#undo(plan, made, tables).catch(() => {})
      await progress({ phase: 'failed', error: message }).catch(() => {})
      if (error instanceof SiloError && (error.statusCode < 500 || error.code === 'MOVE_FAILED')) throw error
      throw new SiloError('MOVE_FAILED', `Moving ${tenant.slug} to ${target.name} failed; it is served from ${source.name} as before: ${message}`, { cause: error })
    }
    await closeAll(clients)
    await progress({ phase: 'done' })
    events?.emit('tenant:moved', { slug: tenant.slug, from: source.name, to: target.name, durationMs: performance.now() - began, freezeMs: current.freezeMs ?? 0 })
    return current
  }

  /** The target's role, and its database from the server's template (else migrated), at the tenant's schema version. */
  async #makeTarget ({ tenant, target }: MovePlan): Promise<void> {
    const { name, user, password } = tenant.database
    const mark = target.ownership.mark('tenant')
    await target.admin.ensureRole(user, password, mark)
    let version: string | null = null
    if (target.template !== undefined) {
      try {
        version = await target.template.clone(name, user, { mark })
      } catch (error) {
        if (error instanceof SiloError) throw error
        target.template.reset()
        await target.ownership.dropDatabase(name)
      }
    }
    if (version === null || version !== tenant.schemaVersion) {
      if (version === null) await target.admin.ensureDatabase(name, user, { mark })
      await this.#deps.migrator.migrate(onServer(tenant, target))
    }
  }

  /**
   * One freeze: the catalog freezes the tenant for MOVE_HOLD_MS; the source's tables are locked
   * against writes (waiting for writes under way), the last notes and the sequences are carried
   * over, the tables are locked against reads too, and the catalog switches the tenant while the
   * freeze holds. Then the source is closed to new sessions and its open ones are ended, so nothing
   * is served from it after the switch. Not switched (a lock not granted in time, the freeze
   * lapsed): the freeze is lifted and the tenant served from its source again.
   */
  async #freezeAndSwitch ({ tenant, source, target }: MovePlan, move: MoveRecord, from: pg.Client, to: pg.Client, tables: TenantTable[], sequences: Awaited<ReturnType<typeof tenantSequences>>): Promise<{ switched: boolean, applied: number, ms: number }> {
    const { catalog, holdMs } = this.#deps
    this.#checkOpen()
    const frozenAt = performance.now()
    const remaining = (): number => Math.max(1, Math.floor(holdMs - (performance.now() - frozenAt)))
    if (!await catalog.moves.freeze(tenant.id, holdMs)) throw new SiloError('TENANT_STATE_CONFLICT', `Tenant ${tenant.slug} is not active any more`)
    this.#forget(tenant)
    let applied = 0
    let switched = false
    const names = tables.map((table) => table.sql).join(', ')
    try {
      // The instances hear of the freeze through the feed a few milliseconds after it commits:
      // a request admitted before that sends its statement meanwhile, and is waited for below.
      await new Promise((resolve) => setTimeout(resolve, FEED_SETTLE_MS))
      await quiesce(from, Math.min(QUIESCE_MAX_MS, holdMs / 4))
      await from.query('begin')
      await from.query(`set local lock_timeout = ${Math.floor(remaining() / 2)}`)
      if (tables.length > 0) await from.query(`lock table ${names} in exclusive mode`)
      for (let count = -1; count !== 0;) applied += count = await catchUp(from, to, tables)
      await copySequences(from, to, sequences)
      await from.query(`set local lock_timeout = ${remaining()}`)
      if (tables.length > 0) await from.query(`lock table ${names} in access exclusive mode`)
      await this.#step('switch', tenant.slug)
      switched = await catalog.moves.switchServer(tenant.id, target.id, move.id)
      if (!switched) throw new FreezeLapsed()
      const ms = performance.now() - frozenAt
      // Closed to new sessions first (committed on a session of its own, while this one holds the
      // locks), then every other session ended: none can write or read after the locks go. The
      // switch is made: a failure here is the source's to clean up (doctor), never a reason to undo.
      try {
        await source.admin.setAllowConnections(tenant.database.name, false)
      } finally {
        await from.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()').catch(() => {})
        await from.query('commit').catch(() => {})
      }
      return { switched, applied, ms }
    } catch (error) {
      if (switched) return { switched, applied, ms: performance.now() - frozenAt }
      await from.query('rollback').catch(() => {})
      await catalog.moves.unfreeze(tenant.id)
      this.#forget(tenant)
      if (error instanceof FreezeLapsed || isLockTimeout(error)) return { switched: false, applied, ms: performance.now() - frozenAt }
      throw error
    }
  }

  /** After the switch: the source dropped with its role, or kept (its capture removed; connections already refused). */
  async #retireSource ({ tenant, source }: MovePlan, keep: boolean, from: pg.Client, tables: TenantTable[]): Promise<void> {
    if (keep) {
      await removeCapture(from, tables)
      return
    }
    await from.end()
    await source.ownership.dropDatabase(tenant.database.name)
    await source.ownership.dropRole(tenant.database.user)
  }

  /** Undoes what a move made before its switch: the source's capture, the target's database and role. */
  async #undo ({ tenant, source, target }: MovePlan, made: { target: boolean, capture: boolean }, tables: TenantTable[]): Promise<void> {
    // Never the copy the catalog serves the tenant from (a switch this process did not see commit).
    if ((await this.#deps.catalog.tenantBySlug(tenant.slug))?.server.id === target.id) return
    await this.#deps.catalog.moves.unfreeze(tenant.id).catch(() => {})
    this.#forget(tenant)
    if (made.capture) {
      const clients: pg.Client[] = []
      try {
        await removeCapture(await connect(source, tenant, clients), tables.length > 0 ? tables : await tenantTables(clients[0] as pg.Client))
      } finally {
        await closeAll(clients)
      }
    }
    if (made.target) {
      await target.ownership.dropDatabase(tenant.database.name)
      await target.ownership.dropRole(tenant.database.user)
    }
  }

  async #step (step: MoveStep, slug: string): Promise<void> {
    this.#checkOpen()
    await this.#deps.beforeStep?.(step, slug)
  }

  #checkOpen (): void {
    if (this.#closed) throw new SiloError('SHUTTING_DOWN', 'This instance is shutting down: the move was stopped')
  }

  #forget (tenant: TenantRecord): void {
    this.#deps.resolver?.invalidateTenant(tenant.id)
    this.#deps.pools?.evict(tenant.id)
  }
}
