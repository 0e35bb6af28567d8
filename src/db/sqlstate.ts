/**
 * The SQLSTATEs Silo acts on (PostgreSQL, Appendix A "Error Codes"), named once: every module
 * asks these predicates instead of spelling a code. Each predicate takes the error as thrown
 * (node-postgres puts the SQLSTATE in `code`); anything without a string `code` is none of them.
 */
export const SQLSTATE = {
  /** unique_violation: a concurrent insert of the same key. */
  UNIQUE_VIOLATION: '23505',
  /** foreign_key_violation: e.g. removing a server that still holds tenants. */
  FOREIGN_KEY_VIOLATION: '23503',
  /** duplicate_database: CREATE DATABASE of a name that exists. */
  DUPLICATE_DATABASE: '42P04',
  /** duplicate_object: CREATE ROLE of a name that exists. */
  DUPLICATE_OBJECT: '42710',
  /** duplicate_table: CREATE TABLE of a relation that exists (an attached database's own table). */
  DUPLICATE_TABLE: '42P07',
  /** duplicate_column. */
  DUPLICATE_COLUMN: '42701',
  /** duplicate_schema. */
  DUPLICATE_SCHEMA: '42P06',
  /** duplicate_function. */
  DUPLICATE_FUNCTION: '42723',
  /** insufficient_privilege: e.g. no CREATE on the schema a migration creates tables in. */
  INSUFFICIENT_PRIVILEGE: '42501',
  /** undefined_table: e.g. knex_migrations in a database never migrated. */
  UNDEFINED_TABLE: '42P01',
  /** undefined_object: e.g. a role that does not exist. */
  UNDEFINED_OBJECT: '42704',
  /** invalid_catalog_name: the database does not exist. */
  INVALID_CATALOG_NAME: '3D000',
  /** lock_not_available: a lock not granted within lock_timeout. */
  LOCK_NOT_AVAILABLE: '55P03',
  /** too_many_connections. */
  TOO_MANY_CONNECTIONS: '53300',
  /** admin_shutdown: the server is shutting down, or the backend was terminated. */
  ADMIN_SHUTDOWN: '57P01',
  /** crash_shutdown. */
  CRASH_SHUTDOWN: '57P02',
  /** cannot_connect_now: the server is starting or in recovery. */
  CANNOT_CONNECT_NOW: '57P03',
  /** invalid_authorization_specification: login refused (no such role, pg_hba). */
  INVALID_AUTHORIZATION_SPECIFICATION: '28000',
  /** invalid_password. */
  INVALID_PASSWORD: '28P01'
} as const

export type SqlState = typeof SQLSTATE[keyof typeof SQLSTATE]

/** Class 08, connection exception: the connection failed or broke. */
export const CONNECTION_EXCEPTION_CLASS = '08'
/** Class 57P, operator intervention that ends sessions (shutdown, recovery, database dropped, idle timeout). */
export const SESSION_ENDED_CLASS = '57P'

/** States other than class 08 that mean "this database cannot serve now", not "this statement is wrong". */
const UNAVAILABLE: ReadonlySet<string> = new Set<SqlState>([
  SQLSTATE.TOO_MANY_CONNECTIONS,
  SQLSTATE.ADMIN_SHUTDOWN,
  SQLSTATE.CRASH_SHUTDOWN,
  SQLSTATE.CANNOT_CONNECT_NOW,
  SQLSTATE.INVALID_CATALOG_NAME,
  SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION,
  SQLSTATE.INVALID_PASSWORD
])

/** Login refused: no such role, a wrong password, or pg_hba (28000, 28P01). */
export function isLoginRefused (error: unknown): boolean {
  const state = sqlStateOf(error)
  return state === SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION || state === SQLSTATE.INVALID_PASSWORD
}

/** The error's `code` when it is a string (a SQLSTATE, or a Node network code such as ECONNREFUSED). */
export function sqlStateOf (error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const { code } = error as { code?: unknown }
  return typeof code === 'string' ? code : undefined
}

const is = (state: SqlState) => (error: unknown): boolean => sqlStateOf(error) === state

export const isUniqueViolation = is(SQLSTATE.UNIQUE_VIOLATION)
export const isForeignKeyViolation = is(SQLSTATE.FOREIGN_KEY_VIOLATION)
export const isDuplicateDatabase = is(SQLSTATE.DUPLICATE_DATABASE)
export const isDuplicateObject = is(SQLSTATE.DUPLICATE_OBJECT)
export const isUndefinedTable = is(SQLSTATE.UNDEFINED_TABLE)
export const isUndefinedObject = is(SQLSTATE.UNDEFINED_OBJECT)
export const isInsufficientPrivilege = is(SQLSTATE.INSUFFICIENT_PRIVILEGE)
/** A lock not granted within lock_timeout. */
export const isLockTimeout = is(SQLSTATE.LOCK_NOT_AVAILABLE)
/** No such database (invalid_catalog_name). */
export const isUndefinedDatabase = is(SQLSTATE.INVALID_CATALOG_NAME)

const DUPLICATE_DEFINITION: ReadonlySet<string> = new Set<SqlState>([
  SQLSTATE.DUPLICATE_TABLE, SQLSTATE.DUPLICATE_COLUMN, SQLSTATE.DUPLICATE_SCHEMA, SQLSTATE.DUPLICATE_FUNCTION, SQLSTATE.DUPLICATE_OBJECT
])

/** A definition that exists already (a table, column, schema, function or other object): a schema conflict. */
export function isDuplicateDefinition (error: unknown): boolean {
  const state = sqlStateOf(error)
  return state !== undefined && DUPLICATE_DEFINITION.has(state)
}

/** Class 08: the connection failed or broke. */
export function isConnectionException (error: unknown): boolean {
  return sqlStateOf(error)?.startsWith(CONNECTION_EXCEPTION_CLASS) === true
}

/** Class 57P: the server ended the session (shutdown, recovery, its database dropped, idle timeout). */
export function isSessionEnded (error: unknown): boolean {
  return sqlStateOf(error)?.startsWith(SESSION_ENDED_CLASS) === true
}

/**
 * The database cannot serve now (not: this request is wrong): connection exceptions (08), too
 * many connections (53300), shutdown and recovery (57P01–57P03), database gone (3D000), login
 * refused (28000, 28P01).
 */
export function isUnavailable (error: unknown): boolean {
  const state = sqlStateOf(error)
  return state !== undefined && (state.startsWith(CONNECTION_EXCEPTION_CLASS) || UNAVAILABLE.has(state))
}
