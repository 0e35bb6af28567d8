import { randomBytes } from 'node:crypto'
import pLimit from 'p-limit'
import type { CatalogStore } from '../catalog/catalog-store.js'
import { assertIdentifier } from '../db/identifiers.js'
import { parseMark } from '../db/object-marks.js'
import type { ServerAdmin } from '../db/server-admin.js'
import { isUndefinedDatabase, isUndefinedObject } from '../db/sqlstate.js'
import type { SiloEvents } from '../events.js'
import type { Ownership } from './ownership.js'
import type { TenantTemplate } from './tenant-template.js'

export interface SpareDatabasesDeps {
  admin: ServerAdmin
  /** Holds a lock on each spare while it is made, so doctor does not take it for an orphan. */
  catalog: CatalogStore
  ownership: Ownership
  template: TenantTemplate
  prefix: string
  /** How many spares to keep ready at rest (TENANT_SPARES). */
  target: number
  /** How many the stock grows to while creates outrun it (TENANT_SPARES_MAX; at least `target`). */
  maxTarget?: number
  events?: SiloEvents
  /** The clock the target's shrinking reads (tests move it). */
  now?: () => number
}

/**
 * Spares made at once. One server made 48 clones a second one at a time, 86 two at a time and 79
 * four at a time (a small template, PostgreSQL 15, 2 cores): a clone waits on its WAL flush, and
 * two overlap those waits; more only compete for the disk and for the creates' own connections.
 */
export const SPARES_MADE_AT_ONCE = 2
/** After this long with no create finding the stock empty, the grown target halves back toward TENANT_SPARES. */
export const SHRINK_AFTER_MS = 60_000

/** Spare databases and their roles are named `<prefix>_spare_<hex>`: slugs never start with `_`. */
export const spareNamePrefix = (prefix: string): string => `${prefix}_spare_`

/** The catalog lock held while a spare is made. */
export const spareLockKey = (name: string): string => `spare:${name}`

export interface Spare {
  name: string
  /** Newest tenant migration it holds ('empty' for none). */
  version: string
}

/**
 * This catalog's spares on the server that are complete (their mark records a version), whatever
 * the version. Another catalog's spares, on a server and prefix shared with it, are not listed.
 */
export async function listSpares (admin: ServerAdmin, ownership: Ownership, prefix: string): Promise<Spare[]> {
  const spares: Spare[] = []
  for (const { name, comment } of await admin.listDatabaseComments(spareNamePrefix(prefix))) {
    const mark = parseMark(comment)
    if (mark?.kind === 'spare' && mark.detail !== undefined && ownership.claimOf(mark) === 'ours') spares.push({ name, version: mark.detail })
  }
  return spares
}

/**
 * Tenant databases cloned ahead of demand. A spare is a clone of the template owned by a
 * NOLOGIN role of its own, with every object already handed to that role and no session
 * left on it; claiming one renames database and role to the tenant's names and gives the
 * role its login and password, in one transaction of a few milliseconds, instead of the
 * tens of milliseconds CREATE DATABASE takes. A spare's role carries this catalog's mark from
 * its creation; its database's mark, set in the transaction that hands it the template's
 * objects, records the schema version it was cloned at, so an unfinished spare is never
 * claimed. One behind the template is dropped, never handed out.
 *
 * After each claim, and at start, spares are made again in the background, SPARES_MADE_AT_ONCE
 * at a time, up to the target. The target follows the creates: it starts at `target`, doubles
 * (up to `maxTarget`) each time a create finds no spare ready once the stock has been full, and
 * halves back after a quiet minute; spares beyond it stay until claimed. A create that finds none ready while some are
 * being made waits for the first one done rather than cloning one of its own: that clone would
 * start later than the one under way and slow it down. Spares left by an earlier run, or by
 * another instance, are adopted; two instances claiming the same spare cannot both succeed (the
 * rename of the loser fails).
 */
export class SpareDatabases {
  readonly #deps: SpareDatabasesDeps
  readonly #ready: Spare[] = []
  /** Creates waiting for a spare being made; each gets the next one done, or undefined when none will come. */
  readonly #waiting: Array<(spare: Spare | undefined) => void> = []
  /** Spares being made, awaited by close. */
  readonly #making = new Set<Promise<void>>()
  /** Drops under way (of stale or broken spares), awaited by close. */
  readonly #discarding = new Set<Promise<void>>()
  /**
   * The background work (making a spare, dropping a stale one) is bounded: each step holds an
   * admin connection for up to seconds (a clone; a drop waits for a checkpoint), and the creates
   * this serves need those connections too.
   */
  readonly #work = pLimit(SPARES_MADE_AT_ONCE)
  #target: number
  readonly #now: () => number
  #lastShortage = 0
  /** Whether the stock has been full since start: until then, a create that finds none is no sign that creates outrun the refill. */
  #filled = false
  /** Set when making a spare failed: none is made again until the next claim, so a broken server is not retried in a loop. */
  #failing = false
  #closed = false
  #adopted: Promise<void> | undefined

  constructor (deps: SpareDatabasesDeps) {
    this.#deps = deps
    this.#target = deps.target
    this.#now = deps.now ?? Date.now
  }

  /** How many spares are kept ready now: TENANT_SPARES, or more while creates outrun them. */
  get target (): number {
    return this.#target
  }

  /** Adopts the spares already on the server and starts making the missing ones. */
  start (): void {
    this.#adopted ??= this.#adopt().catch((error: unknown) => { this.#failed(error) })
    void this.#adopted.then(() => { this.#fill() })
  }

  /**
   * Turns a spare into `database` owned by the login role `role` with `password`; returns the
   * schema version it holds, or undefined when no spare of the template's version is ready or
   * coming, or the claim failed (the caller clones or migrates as usual). Throws only when the
   * template cannot be made ready.
   */
  async claim (database: string, role: string, password: string): Promise<string | null | undefined> {
    await this.#adopted
    const latest = await this.#deps.template.ready()
    const version = latest ?? 'empty'
    this.#failing = false
    try {
      for (let spare = await this.#next(); spare !== undefined; spare = await this.#next()) {
        if (spare.version !== version) {
          this.#discardLater(spare.name)
          continue
        }
        try {
          await this.#deps.admin.adoptDatabaseAndRole(spare.name, database, role, password, this.#deps.ownership.mark('tenant'))
          return latest
        } catch (error) {
          // Gone: claimed by another instance, or dropped by hand; try the next one. Anything
          // else: give up on spares for this create, which goes the usual way.
          if (isGone(error)) continue
          this.#failed(error)
          this.#discardLater(spare.name)
          return undefined
        }
      }
      return undefined
    } finally {
      // The claim runs under the create's tenant lock; the spares made after it are not that create's work.
      this.#deps.catalog.outsideLocks(() => { this.#fill() })
    }
  }

  /** Stops making spares and waits for those being made; ready spares stay for the next start or another instance. */
  async close (): Promise<void> {
    this.#closed = true
    this.#release()
    await this.settled()
  }

  /** Resolves when the spares being made or dropped now are done (for tests and the bench). */
  async settled (): Promise<void> {
    await this.#adopted
    while (this.#making.size > 0 || this.#discarding.size > 0) {
      await Promise.all([...this.#making, ...this.#discarding])
    }
  }

  async #adopt (): Promise<void> {
    this.#ready.push(...await listSpares(this.#deps.admin, this.#deps.ownership, this.#deps.prefix))
    if (this.#ready.length >= this.#target) this.#filled = true
  }

  /** A ready spare; with none, the first one being made (the stock grows); undefined when none is coming. */
  async #next (): Promise<Spare | undefined> {
    const spare = this.#ready.shift()
    if (spare !== undefined) {
      this.#shrinkWhenQuiet()
      return spare
    }
    if (this.#filled) {
      this.#lastShortage = this.#now()
      this.#target = Math.min(this.#deps.maxTarget ?? this.#deps.target, Math.max(1, this.#target * 2))
    }
    this.#deps.catalog.outsideLocks(() => { this.#fill() })
    if (this.#closed || this.#making.size <= this.#waiting.length) return undefined
    return await new Promise<Spare | undefined>((resolve) => { this.#waiting.push(resolve) })
  }

  #shrinkWhenQuiet (): void {
    if (this.#target > this.#deps.target && this.#now() - this.#lastShortage > SHRINK_AFTER_MS) {
      this.#target = Math.max(this.#deps.target, Math.floor(this.#target / 2))
      this.#lastShortage = this.#now()
    }
  }

  /** Starts making spares until those ready and under way cover the target and the creates waiting. */
  #fill (): void {
    while (!this.#closed && !this.#failing && this.#making.size < SPARES_MADE_AT_ONCE &&
      this.#ready.length + this.#making.size < this.#target + this.#waiting.length) {
      const making: Promise<void> = this.#work(async () => await this.#make())
        .then((spare) => { this.#deliver(spare) }, (error: unknown) => {
          this.#failing = true
          this.#failed(error)
          // Nothing more is made until the next claim: those waiting go the usual way.
          this.#release()
        })
        .finally(() => {
          this.#making.delete(making)
          this.#fill()
        })
      this.#making.add(making)
    }
  }

  /** A new spare goes to the create that has waited longest, or joins the stock. */
  #deliver (spare: Spare): void {
    const waiter = this.#waiting.shift()
    if (waiter === undefined) this.#ready.push(spare)
    else waiter(spare)
    if (this.#ready.length >= this.#target) this.#filled = true
  }

  /** Everyone waiting goes the usual way (clone or migrate). */
  #release (): void {
    for (let waiter = this.#waiting.shift(); waiter !== undefined; waiter = this.#waiting.shift()) waiter(undefined)
  }

  async #make (): Promise<Spare> {
    const { catalog, prefix } = this.#deps
    const name = assertIdentifier(`${spareNamePrefix(prefix)}${randomBytes(4).toString('hex')}`, 'database name')
    return await catalog.withLock(spareLockKey(name), 'exclusive', async () => await this.#makeLocked(name))
  }

  async #makeLocked (name: string): Promise<Spare> {
    const { admin, ownership, template } = this.#deps
    try {
      await admin.ensureGroupRole(name, ownership.mark('spare'))
      // The database's mark, with its version, comes with the hand-over of its objects, in one
      // transaction: a spare without it is unfinished, never claimed.
      const latest = await template.clone(name, name, { waitForClose: true, doneMark: (version) => ownership.mark('spare', version ?? 'empty') })
      return { name, version: latest ?? 'empty' }
    } catch (error) {
      await this.#discard(name)
      throw error
    }
  }

  #discardLater (name: string): void {
    const dropping = this.#work(async () => { await this.#discard(name) }).finally(() => { this.#discarding.delete(dropping) })
    this.#discarding.add(dropping)
  }

  async #discard (name: string): Promise<void> {
    try {
      await this.#deps.ownership.dropDatabase(name)
      await this.#deps.ownership.dropRole(name)
    } catch (error) {
      this.#failed(error)
    }
  }

  #failed (error: unknown): void {
    this.#deps.events?.emit('spares:failed', { error: error as Error })
  }
}

/** invalid_catalog_name (no such database) or undefined_object (no such role). */
function isGone (error: unknown): boolean {
  return isUndefinedDatabase(error) || isUndefinedObject(error)
}
