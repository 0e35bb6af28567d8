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
  /** How many spares to keep ready. */
  target: number
  events?: SiloEvents
}

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
 * its creation; its database's mark, set last, records the schema version it was cloned at, so
 * an unfinished spare is never claimed. One behind the template is dropped, never handed out.
 *
 * After each claim, and at start, spares are made again in the background, one at a time,
 * up to `target`. Spares left by an earlier run, or by another instance, are adopted; two
 * instances claiming the same spare cannot both succeed (the rename of the loser fails).
 */
export class SpareDatabases {
  readonly #deps: SpareDatabasesDeps
  readonly #ready: Spare[] = []
  #filling: Promise<void> | undefined
  /** Drops under way (of stale or broken spares), awaited by close. */
  readonly #discarding = new Set<Promise<void>>()
  /**
   * The background work (making a spare, dropping a stale one) goes one step at a time: each
   * holds an admin connection for seconds (a clone; a drop waits for a checkpoint), and the
   * creates this serves need those connections too.
   */
  readonly #oneAtATime = pLimit(1)
  #closed = false
  #adopted: Promise<void> | undefined

  constructor (deps: SpareDatabasesDeps) {
    this.#deps = deps
  }

  /** Adopts the spares already on the server and starts making the missing ones. */
  start (): void {
    this.#adopted ??= this.#adopt().catch((error: unknown) => { this.#failed(error) })
    void this.#adopted.then(() => { this.#fill() })
  }

  /**
   * Turns a spare into `database` owned by the login role `role` with `password`; returns the
   * schema version it holds, or undefined when no spare of the template's version is ready or
   * the claim failed (the caller clones or migrates as usual). Throws only when the template
   * cannot be made ready.
   */
  async claim (database: string, role: string, password: string): Promise<string | null | undefined> {
    await this.#adopted
    const latest = await this.#deps.template.ready()
    const version = latest ?? 'empty'
    try {
      for (let spare = this.#ready.shift(); spare !== undefined; spare = this.#ready.shift()) {
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

  /** Stops making spares and waits for the one being made; ready spares stay for the next start or another instance. */
  async close (): Promise<void> {
    this.#closed = true
    await this.settled()
  }

  /** Resolves when the spares being made or dropped now are done (for tests and the bench). */
  async settled (): Promise<void> {
    await this.#adopted
    while (this.#filling !== undefined || this.#discarding.size > 0) {
      await Promise.all([this.#filling, ...this.#discarding])
    }
  }

  async #adopt (): Promise<void> {
    this.#ready.push(...await listSpares(this.#deps.admin, this.#deps.ownership, this.#deps.prefix))
  }

  #fill (): void {
    if (this.#filling !== undefined || this.#closed || this.#ready.length >= this.#deps.target) return
    const run = async (): Promise<void> => {
      while (!this.#closed && this.#ready.length < this.#deps.target) this.#ready.push(await this.#oneAtATime(async () => await this.#make()))
    }
    // The next claim tries again after a failure. `finally` runs after the assignment, always.
    this.#filling = run().catch((error: unknown) => { this.#failed(error) }).finally(() => { this.#filling = undefined })
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
      const latest = await template.clone(name, name, { waitForClose: true })
      const version = latest ?? 'empty'
      // The database's mark, with its version, comes last: a spare without it is unfinished, never claimed.
      await admin.setDatabaseComment(name, ownership.mark('spare', version))
      return { name, version }
    } catch (error) {
      await this.#discard(name)
      throw error
    }
  }

  #discardLater (name: string): void {
    const dropping = this.#oneAtATime(async () => { await this.#discard(name) }).finally(() => { this.#discarding.delete(dropping) })
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
