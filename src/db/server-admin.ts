import type { Knex } from 'knex'
import { SiloError } from '../errors.js'
import { assertIdentifier } from './identifiers.js'
import { assertSafeComment, parseMark } from './object-marks.js'
import { assertVerifier, scramVerifier } from './scram.js'
import { isDuplicateDatabase, isDuplicateObject, isUniqueViolation } from './sqlstate.js'

/** A database on the server, with what says who made it: its comment and its owner's. */
export interface DatabaseObject {
  name: string
  comment: string | null
  owner: string
  ownerComment: string | null
}

/** A role on the server, with its comment. */
export interface RoleObject {
  name: string
  comment: string | null
  superuser: boolean
}

/**
 * DDL on the PostgreSQL server that holds tenant databases, run through the admin connection.
 * Every name is checked by assertIdentifier and bound with `??`. Utility statements cannot take
 * bind parameters, so the role password goes in as a SCRAM verifier literal whose alphabet is
 * checked first: no input is ever spliced into SQL as text.
 *
 * Whatever it creates carries an ownership mark (src/db/object-marks.ts) from the first
 * statement on where PostgreSQL allows it: a role and its comment in one transaction; a database
 * owned by such a role (CREATE DATABASE cannot share a transaction). It never takes over a role
 * another catalog marked. Drops here are unchecked: code that may meet objects it does not own
 * drops through Ownership (src/tenancy/ownership.ts), which checks the mark first.
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

  /**
   * The server's system identifier (pg_control_system), the same for every address of one
   * server: tells two registrations of one server apart from two servers. Null where refused.
   */
  async systemIdentifier (): Promise<string | null> {
    try {
      const { rows } = await this.#knex.raw<{ rows: Array<{ id: string }> }>('select system_identifier::text as id from pg_control_system()')
      return rows[0]?.id ?? null
    } catch {
      return null
    }
  }

  /** Whether the admin role may make tenants here: a superuser, or CREATEDB and CREATEROLE. */
  async adminRights (): Promise<{ role: string, superuser: boolean, createdb: boolean, createrole: boolean }> {
    const { rows } = await this.#knex.raw<{ rows: Array<{ role: string, superuser: boolean, createdb: boolean, createrole: boolean }> }>(
      'select rolname as role, rolsuper as superuser, rolcreatedb as createdb, rolcreaterole as createrole from pg_roles where rolname = current_user')
    const row = rows[0]
    if (row === undefined) throw new Error('no role information')
    return row
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

  /** Every database on the server, with its comment, its owner and its owner's comment. */
  async listDatabaseObjects (): Promise<DatabaseObject[]> {
    const { rows } = await this.#knex.raw<{ rows: DatabaseObject[] }>(`
      select d.datname as name, shobj_description(d.oid, 'pg_database') as comment,
             r.rolname as owner, shobj_description(r.oid, 'pg_authid') as "ownerComment"
      from pg_database d join pg_roles r on r.oid = d.datdba order by d.datname`)
    return rows
  }

  /** Every role on the server (but PostgreSQL's own `pg_*` roles), with its comment. */
  async listRoleObjects (): Promise<RoleObject[]> {
    const { rows } = await this.#knex.raw<{ rows: RoleObject[] }>(`
      select rolname as name, shobj_description(oid, 'pg_authid') as comment, rolsuper as superuser
      from pg_roles where rolname !~ '^pg_' order by rolname`)
    return rows
  }

  /** One database's marks, or null when it does not exist. */
  async databaseObject (name: string): Promise<DatabaseObject | null> {
    const { rows } = await this.#knex.raw<{ rows: DatabaseObject[] }>(`
      select d.datname as name, shobj_description(d.oid, 'pg_database') as comment,
             r.rolname as owner, shobj_description(r.oid, 'pg_authid') as "ownerComment"
      from pg_database d join pg_roles r on r.oid = d.datdba where d.datname = ?`, [name])
    return rows[0] ?? null
  }

  /** One role's comment, or undefined when the role does not exist. */
  async roleComment (name: string): Promise<string | null | undefined> {
    const { rows } = await this.#knex.raw<{ rows: Array<{ comment: string | null }> }>(
      'select shobj_description(oid, \'pg_authid\') as comment from pg_roles where rolname = ?', [name])
    return rows.length === 0 ? undefined : rows[0]?.comment ?? null
  }

  /** The admin connection's own role and database: never Silo's to drop, whatever their names. */
  async session (): Promise<{ role: string, database: string }> {
    const { rows } = await this.#knex.raw<{ rows: Array<{ role: string, database: string }> }>('select current_user as role, current_database() as database')
    const row = rows[0]
    if (row === undefined) throw new Error('no session information')
    return row
  }

  async listRoles (prefix: string): Promise<string[]> {
    const rows = await this.#knex('pg_roles').whereLike('rolname', `${escapeLike(prefix)}%`).orderBy('rolname').pluck('rolname')
    return rows as string[]
  }

  /**
   * Creates the login role marked with `mark`, or, when it exists and carries a mark of the same
   * catalog (a re-run of a create), resets its password. A role of another catalog, or one
   * without a mark, is never taken over. The password must be a random one Silo generated: its
   * verifier is cheap to derive (src/db/scram.ts).
   */
  async ensureRole (name: string, password: string, mark: string): Promise<void> {
    assertIdentifier(name, 'role name')
    const verifier = assertVerifier(scramVerifier(password))
    const attributes = loginAttributes(verifier)
    await this.#createMarkedRole(name, attributes, mark, true)
  }

  /**
   * Renames the database and the role `from` (a spare made by SpareDatabases: a database owned
   * by a NOLOGIN role of the same name) to `database` and `role`, and makes that role a login
   * with `password`, all in one transaction: either a tenant's database and role exist under
   * the new names, or the spare is untouched. Fails with 3D000 when `from` is gone (claimed by
   * another instance) and 55006 while a session is open on it.
   */
  async adoptDatabaseAndRole (from: string, database: string, role: string, password: string, mark: string): Promise<void> {
    assertIdentifier(from, 'database name')
    assertIdentifier(database, 'database name')
    assertIdentifier(role, 'role name')
    const verifier = assertVerifier(scramVerifier(password))
    const comment = assertSafeComment(mark)
    // One simple query of several statements is one implicit transaction; identifiers are quoted into the text.
    await this.#knex.raw(
      `ALTER DATABASE ?? RENAME TO ??; ALTER ROLE ?? RENAME TO ??; ALTER ROLE ?? WITH ${loginAttributes(verifier)}; ` +
      `COMMENT ON DATABASE ?? IS '${comment}'; COMMENT ON ROLE ?? IS '${comment}'`,
      [from, database, from, role, role, database, role])
  }

  /**
   * Creates the database owned by `owner` (unless it exists) and lets only its owner connect;
   * with `mark`, comments it too (a spare gets its comment only once complete).
   */
  async ensureDatabase (name: string, owner: string, options: { template?: string, mark?: string } = {}): Promise<void> {
    assertIdentifier(name, 'database name')
    assertIdentifier(owner, 'role name')
    const { template, mark } = options
    try {
      if (template === undefined) {
        await this.#knex.raw('CREATE DATABASE ?? OWNER ?? ENCODING \'UTF8\'', [name, owner])
      } else {
        await this.#knex.raw('CREATE DATABASE ?? OWNER ?? TEMPLATE ??', [name, owner, assertIdentifier(template, 'template name')])
      }
    } catch (error) {
      if (!isDuplicate(error)) throw error
      // A re-run of a create finds its own database; one owned by anyone else is not to be touched.
      if ((await this.databaseObject(name))?.owner !== owner) {
        throw new SiloError('SLUG_TAKEN', `A database named ${name} already exists on the server outside this catalog`)
      }
    }
    // Identifier bindings are quoted by knex into the text, so the statements go in one round trip.
    const comment = mark === undefined ? '' : `; COMMENT ON DATABASE ?? IS '${assertSafeComment(mark)}'`
    await this.#knex.raw(`REVOKE ALL ON DATABASE ?? FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE ?? TO ??${comment}`,
      [name, name, owner, ...(mark === undefined ? [] : [name])])
  }

  /**
   * Creates a database for Silo's own use (the catalog, the template) that no other role may
   * connect to; with `mark`, comments it as it is created (an existing one keeps its comment).
   */
  async ensurePrivateDatabase (name: string, mark?: string): Promise<void> {
    assertIdentifier(name, 'database name')
    if (await this.databaseExists(name)) return
    try {
      await this.#knex.raw('CREATE DATABASE ?? ENCODING \'UTF8\'', [name])
    } catch (error) {
      if (!isDuplicate(error)) throw error
    }
    const comment = mark === undefined ? '' : `; COMMENT ON DATABASE ?? IS '${assertSafeComment(mark)}'`
    await this.#knex.raw(`REVOKE ALL ON DATABASE ?? FROM PUBLIC${comment}`, [name, ...(mark === undefined ? [] : [name])])
  }

  /**
   * A role that cannot log in, marked with `mark` (or of the same catalog when it exists); the
   * admin becomes a member so it can SET ROLE to it.
   */
  async ensureGroupRole (name: string, mark: string): Promise<void> {
    assertIdentifier(name, 'role name')
    await this.#createMarkedRole(name, 'NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', mark, false)
  }

  /**
   * CREATE ROLE and its COMMENT in one implicit transaction, so no role of Silo's exists without
   * its mark. When the role exists, it is Silo's to reuse only if its mark names the same catalog.
   */
  async #createMarkedRole (name: string, attributes: string, mark: string, alterExisting: boolean): Promise<void> {
    const comment = assertSafeComment(mark)
    const catalogId = parseMark(comment)?.catalogId
    if (catalogId === undefined) throw new TypeError('Not an ownership mark')
    try {
      await this.#knex.raw(`CREATE ROLE ?? WITH ${attributes}; COMMENT ON ROLE ?? IS '${comment}'`, [name, name])
    } catch (error) {
      if (!isDuplicate(error)) throw error
      const existing = await this.roleComment(name)
      if (parseMark(existing)?.catalogId !== catalogId) {
        throw new SiloError('SLUG_TAKEN', `A role named ${name} already exists on the server outside this catalog`)
      }
      if (alterExisting) await this.#knex.raw(`ALTER ROLE ?? WITH ${attributes}; COMMENT ON ROLE ?? IS '${comment}'`, [name, name])
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
    await this.#knex.raw(`COMMENT ON DATABASE ?? IS '${assertSafeComment(comment)}'`, [name])
  }

  async setRoleComment (name: string, comment: string): Promise<void> {
    assertIdentifier(name, 'role name')
    await this.#knex.raw(`COMMENT ON ROLE ?? IS '${assertSafeComment(comment)}'`, [name])
  }

  /**
   * Drops the database, closing any connection still open to it (PostgreSQL 13+), without
   * asking whose it is: see Ownership for the checked drop.
   */
  async dropDatabaseUnchecked (name: string): Promise<void> {
    assertIdentifier(name, 'database name')
    await this.#knex.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [name])
  }

  /** Drops the role without asking whose it is: see Ownership for the checked drop. */
  async dropRoleUnchecked (name: string): Promise<void> {
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
  return isDuplicateDatabase(error) || isDuplicateObject(error) || isUniqueViolation(error)
}
