import type { Knex } from 'knex'
import { assertIdentifier } from './identifiers.js'
import { assertVerifier, scramVerifier } from './scram.js'

/**
 * DDL on the PostgreSQL server that holds tenant databases, run through the admin connection.
 * Every name is checked by assertIdentifier and bound with `??`. Utility statements cannot take
 * bind parameters, so the role password goes in as a SCRAM verifier literal whose alphabet is
 * checked first: no input is ever spliced into SQL as text.
 */
export class ServerAdmin {
  readonly #knex: Knex
  /** Whether the admin role is a superuser: asked once. */
  #superuser: boolean | undefined

  constructor (knex: Knex) {
    this.#knex = knex
  }

  get knex (): Knex {
    return this.#knex
  }

  async serverVersion (): Promise<string> {
    const { rows } = await this.#knex.raw<{ rows: Array<{ server_version: string }> }>('show server_version')
    return (rows[0]?.server_version ?? '').split(' ')[0] ?? ''
  }

  async databaseExists (name: string): Promise<boolean> {
    const row = await this.#knex('pg_database').where({ datname: name }).first('oid')
    return row !== undefined
  }

  async roleExists (name: string): Promise<boolean> {
    const row = await this.#knex('pg_roles').where({ rolname: name }).first('oid')
    return row !== undefined
  }

  /** Whether a database or a role has this name, in one round trip. */
  async databaseOrRoleExists (name: string): Promise<boolean> {
    const { rows } = await this.#knex.raw<{ rows: Array<{ taken: boolean }> }>(
      'select exists (select 1 from pg_database where datname = ?) or exists (select 1 from pg_roles where rolname = ?) as taken', [name, name])
    return rows[0]?.taken === true
  }

  async listDatabases (prefix: string): Promise<string[]> {
    const rows = await this.#knex('pg_database').whereLike('datname', `${escapeLike(prefix)}%`).orderBy('datname').pluck('datname')
    return rows as string[]
  }

  /** Databases named with `prefix` and their comments, in one round trip. */
  async listDatabaseComments (prefix: string): Promise<Array<{ name: string, comment: string | null }>> {
    return await this.#knex('pg_database').whereLike('datname', `${escapeLike(prefix)}%`).orderBy('datname')
      .select<Array<{ name: string, comment: string | null }>>('datname as name', this.#knex.raw("shobj_description(oid, 'pg_database') as comment"))
  }

  async listRoles (prefix: string): Promise<string[]> {
    const rows = await this.#knex('pg_roles').whereLike('rolname', `${escapeLike(prefix)}%`).orderBy('rolname').pluck('rolname')
    return rows as string[]
  }

  /**
   * Creates the login role, or resets its password when it exists (a re-run of a create). The
   * password must be a random one Silo generated: its verifier is cheap to derive (src/db/scram.ts).
   */
  async ensureRole (name: string, password: string): Promise<void> {
    assertIdentifier(name, 'role name')
    const verifier = assertVerifier(scramVerifier(password))
    const attributes = loginAttributes(verifier)
    try {
      await this.#knex.raw(`CREATE ROLE ?? WITH ${attributes}`, [name])
    } catch (error) {
      if (!isDuplicate(error)) throw error
      await this.#knex.raw(`ALTER ROLE ?? WITH ${attributes}`, [name])
    }
    await this.#grantRoleToSelfIfNeeded(name)
  }

  /**
   * Renames the database and the role `from` (a spare made by SpareDatabases: a database owned
   * by a NOLOGIN role of the same name) to `database` and `role`, and makes that role a login
   * with `password`, all in one transaction: either a tenant's database and role exist under
   * the new names, or the spare is untouched. Fails with 3D000 when `from` is gone (claimed by
   * another instance) and 55006 while a session is open on it.
   */
  async adoptDatabaseAndRole (from: string, database: string, role: string, password: string): Promise<void> {
    assertIdentifier(from, 'database name')
    assertIdentifier(database, 'database name')
    assertIdentifier(role, 'role name')
    const verifier = assertVerifier(scramVerifier(password))
    // One simple query of several statements is one implicit transaction; identifiers are quoted into the text.
    await this.#knex.raw(
      `ALTER DATABASE ?? RENAME TO ??; ALTER ROLE ?? RENAME TO ??; ALTER ROLE ?? WITH ${loginAttributes(verifier)}; COMMENT ON DATABASE ?? IS NULL`,
      [from, database, from, role, role, database])
  }

  /** Creates the database owned by `owner` (unless it exists) and lets only its owner connect. */
  async ensureDatabase (name: string, owner: string, template?: string): Promise<void> {
    assertIdentifier(name, 'database name')
    assertIdentifier(owner, 'role name')
    try {
      if (template === undefined) {
        await this.#knex.raw('CREATE DATABASE ?? OWNER ?? ENCODING \'UTF8\'', [name, owner])
      } else {
        await this.#knex.raw('CREATE DATABASE ?? OWNER ?? TEMPLATE ??', [name, owner, assertIdentifier(template, 'template name')])
      }
    } catch (error) {
      if (!isDuplicate(error)) throw error
    }
    // Identifier bindings are quoted by knex into the text, so both statements go in one round trip.
    await this.#knex.raw('REVOKE ALL ON DATABASE ?? FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE ?? TO ??', [name, name, owner])
  }

  /** Creates a database for Silo's own use (the catalog) that no other role may connect to. */
  async ensurePrivateDatabase (name: string): Promise<void> {
    assertIdentifier(name, 'database name')
    if (await this.databaseExists(name)) return
    try {
      await this.#knex.raw('CREATE DATABASE ?? ENCODING \'UTF8\'', [name])
    } catch (error) {
      if (!isDuplicate(error)) throw error
    }
    await this.#knex.raw('REVOKE ALL ON DATABASE ?? FROM PUBLIC', [name])
  }

  /** A role that cannot log in; the admin becomes a member so it can SET ROLE to it. */
  async ensureGroupRole (name: string): Promise<void> {
    assertIdentifier(name, 'role name')
    if (!(await this.roleExists(name))) {
      try {
        await this.#knex.raw('CREATE ROLE ?? WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', [name])
      } catch (error) {
        if (!isDuplicate(error)) throw error
      }
    }
    await this.#grantRoleToSelfIfNeeded(name)
  }

  /** Whether anyone may connect to the database (off for a template between refreshes). */
  async setAllowConnections (name: string, allow: boolean): Promise<void> {
    assertIdentifier(name, 'database name')
    await this.#knex.raw(`ALTER DATABASE ?? WITH ALLOW_CONNECTIONS ${allow ? 'true' : 'false'}`, [name])
  }

  /** The database's comment (Silo keeps a template's schema version there), read without connecting to it. */
  async databaseComment (name: string): Promise<string | null> {
    const { rows } = await this.#knex.raw<{ rows: Array<{ comment: string | null }> }>(
      'select shobj_description(oid, \'pg_database\') as comment from pg_database where datname = ?', [name])
    return rows[0]?.comment ?? null
  }

  async setDatabaseComment (name: string, comment: string): Promise<void> {
    assertIdentifier(name, 'database name')
    // COMMENT takes no bind parameter: the text is limited to a safe alphabet first.
    if (!/^[a-z0-9_:.-]{1,200}$/.test(comment)) throw new TypeError('Unsafe database comment')
    await this.#knex.raw(`COMMENT ON DATABASE ?? IS '${comment}'`, [name])
  }

  /** Drops the database, closing any connection still open to it (PostgreSQL 13+). */
  async dropDatabase (name: string): Promise<void> {
    assertIdentifier(name, 'database name')
    await this.#knex.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [name])
  }

  async dropRole (name: string): Promise<void> {
    assertIdentifier(name, 'role name')
    await this.#knex.raw('DROP ROLE IF EXISTS ??', [name])
  }

  /**
   * An admin role with CREATEROLE but without SUPERUSER must be a member of a role to create
   * a database owned by it; a superuser needs nothing.
   */
  async #grantRoleToSelfIfNeeded (name: string): Promise<void> {
    if (this.#superuser === undefined) {
      const { rows } = await this.#knex.raw<{ rows: Array<{ rolsuper: boolean }> }>('select rolsuper from pg_roles where rolname = current_user')
      this.#superuser = rows[0]?.rolsuper === true
    }
    if (this.#superuser) return
    await this.#knex.raw('GRANT ?? TO CURRENT_USER', [name])
  }
}

/** What every tenant role is: a login with its password and no privilege beyond its database. */
const loginAttributes = (verifier: string): string =>
  `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '${verifier}'`

function escapeLike (text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`)
}

/** duplicate_database, duplicate_object, or a concurrent catalog insert of the same name. */
function isDuplicate (error: unknown): boolean {
  const code = (error as { code?: string }).code
  return code === '42P04' || code === '42710' || code === '23505'
}
