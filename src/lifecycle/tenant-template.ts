import knex, { type Knex } from 'knex'
import type { CatalogStore } from '../catalog/catalog-store.js'
import { assertIdentifier } from '../db/identifiers.js'
import { knexConfig, tenantMigrations, type PgConnection } from '../db/knex-config.js'
import { assertSafeComment, type CatalogIdentity } from '../db/object-marks.js'
import type { ServerAdmin } from '../db/server-admin.js'
import { withMigrationLock } from './migration-lock.js'
import type { Ownership } from './ownership.js'

export interface TenantTemplateDeps {
  admin: ServerAdmin
  catalog: CatalogStore
  ownership: Ownership
  server: PgConnection
  prefix: string
  /** PostgreSQL's version, so knex skips its probe. */
  serverVersion?: string
  /**
   * The registered server it is on, other than `default`: each server has a template of its own,
   * under a catalog lock of its own (the default's lock key predates servers, and instances of
   * an older version share it).
   */
  serverName?: string
}

/**
 * Name of the template database (and its role): slugs never start with `_`, so no tenant can
 * take it, and it carries the start of the catalog's id, so two catalogs sharing a server and a
 * prefix each keep a template of their own (each refreshes it under a lock in its own catalog).
 */
export const templateDatabaseName = (prefix: string, identity: CatalogIdentity): string =>
  assertIdentifier(`${prefix}_template_${identity.id.replaceAll('-', '').slice(0, 8)}`, 'database name')

/**
 * A database kept migrated to the newest tenant migration, from which new tenant databases are
 * cloned with CREATE DATABASE ... TEMPLATE: a copy of a few files instead of a migration run.
 *
 * The template database belongs to the admin role; the objects inside it are created under
 * SET ROLE to a NOLOGIN role of its own, so a clone can hand exactly those objects to the
 * tenant's role (REASSIGN OWNED) and keep nothing of the template role (DROP OWNED). Between
 * refreshes nobody may connect to it (cloning needs it idle). Both carry this catalog's mark;
 * the database's mark records the schema version once a refresh completes, readable without
 * connecting. Refreshes take an exclusive catalog lock and
 * clones a shared one, so instances and CLIs can do both concurrently.
 */
export class TenantTemplate {
  readonly databaseName: string
  readonly roleName: string
  readonly #deps: TenantTemplateDeps
  #ready: Promise<string | null> | undefined

  constructor (deps: TenantTemplateDeps) {
    this.#deps = deps
    this.databaseName = templateDatabaseName(deps.prefix, deps.ownership.identity)
    this.roleName = this.databaseName
  }

  /** Makes sure the template is on the newest migration; returns that version. Memoized until it fails. */
  async ready (): Promise<string | null> {
    this.#ready ??= this.#refresh().catch((error: unknown) => {
      this.#ready = undefined
      throw error
    })
    return await this.#ready
  }

  /**
   * Creates `database` owned by `owner` as a clone of the template, commented with `mark` when
   * given, or with `doneMark(version)` in the transaction that hands it the template's objects (a
   * spare: only a complete one carries its mark); returns its schema version. Only its owner may
   * connect from the statement after CREATE DATABASE on. By default the connection that hands the
   * objects over is let go without waiting for the server to end its session; `waitForClose` waits
   * (a spare must be idle to be renamed).
   */
  async clone (database: string, owner: string, options: { waitForClose?: boolean, mark?: string, doneMark?: (version: string | null) => string } = {}): Promise<string | null> {
    const version = await this.ready()
    const { admin, catalog } = this.#deps
    await catalog.withLock(this.#lockKey(), 'shared', async () => {
      await admin.ensureDatabase(database, owner, { template: this.databaseName, ...(options.mark === undefined ? {} : { mark: options.mark }) })
    })
    const done = options.doneMark === undefined ? undefined : assertSafeComment(options.doneMark(version))
    // Identifier bindings are quoted into the text, so the statements go in one round trip, one
    // transaction; COMMENT takes no bind parameter (the text is limited to a safe alphabet first).
    // Not waiting for the session to end saves 3 ms here.
    await this.#inDatabase(database, async (db) => {
      await db.raw(`REASSIGN OWNED BY ?? TO ??; DROP OWNED BY ??${done === undefined ? '' : `; COMMENT ON DATABASE ?? IS '${done}'`}`,
        [this.roleName, owner, this.roleName, ...(done === undefined ? [] : [database])])
    }, { waitForClose: options.waitForClose ?? false })
    return version
  }

  /** Forget that the template was found ready (after migrations changed under a running process). */
  reset (): void {
    this.#ready = undefined
  }

  #lockKey (): string {
    const { serverName } = this.#deps
    return serverName === undefined ? `template:${this.databaseName}` : `template:${serverName}:${this.databaseName}`
  }

  async #refresh (): Promise<string | null> {
    const latest = await tenantMigrations.latestName()
    const { admin, catalog, ownership } = this.#deps
    const marker = ownership.mark('template', latest ?? 'empty')
    if (await admin.databaseComment(this.databaseName) === marker) return latest
    await catalog.withLock(this.#lockKey(), 'exclusive', async () => {
      if (await admin.databaseComment(this.databaseName) === marker) return
      await admin.ensureGroupRole(this.roleName, ownership.mark('template'))
      await admin.ensurePrivateDatabase(this.databaseName, ownership.mark('template'))
      await admin.setAllowConnections(this.databaseName, true)
      await this.#inDatabase(this.databaseName, async (db) => {
        await db.raw('GRANT USAGE, CREATE ON SCHEMA public TO ??', [this.roleName])
        await db.raw('SET ROLE ??', [this.roleName])
        // Like a tenant's: a refresh killed in a migration outside a transaction leaves knex's lock set.
        await withMigrationLock(db, async () => await db.migrate.latest())
      })
      await admin.setAllowConnections(this.databaseName, false)
      await admin.setDatabaseComment(this.databaseName, marker)
    })
    return latest
  }

  /**
   * A one-connection admin Knex on `database` (tenant migrations configured), closed after `fn`;
   * by default the close is awaited (a template must have no session left when it is cloned).
   */
  async #inDatabase (database: string, fn: (db: Knex) => Promise<void>, options: { waitForClose?: boolean } = {}): Promise<void> {
    const db = knex(knexConfig({
      schema: 'tenant',
      connection: { ...this.#deps.server, database, application_name: 'silo-template' },
      pool: { min: 0, max: 1 },
      ...(this.#deps.serverVersion === undefined ? {} : { serverVersion: this.#deps.serverVersion })
    }))
    try {
      await fn(db)
    } finally {
      const closed = db.destroy()
      if (options.waitForClose === false) closed.catch(() => {})
      else await closed
    }
  }
}
