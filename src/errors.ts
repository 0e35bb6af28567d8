/**
 * Errors are values with a stable `code`: the one error handler (src/error-handler.ts)
 * turns them into `{ statusCode, code, error, message }`.
 *
 * ERRORS is the one place a code gets its HTTP status (and, for a 503, the `Retry-After` sent
 * by default): a throw site names the code, never a status, so one code always has one status.
 * README.md's error table lists the same codes with the same statuses (test/error-table.test.ts).
 */
export const ERRORS = {
  HOST_INVALID: { status: 400 },
  TENANT_NOT_FOUND: { status: 404 },
  TENANT_SUSPENDED: { status: 403 },
  TENANT_UNAVAILABLE: { status: 503, retryAfter: 5 },
  TENANT_BUSY: { status: 503, retryAfter: 1 },
  CATALOG_UNAVAILABLE: { status: 503, retryAfter: 5 },
  /** Every catalog connection stayed taken for the whole acquire timeout (the catalog answers; this process has too much under way). */
  CATALOG_BUSY: { status: 503, retryAfter: 1 },
  VALIDATION_FAILED: { status: 400 },
  UNAUTHORIZED: { status: 401 },
  NOT_FOUND: { status: 404 },
  SLUG_TAKEN: { status: 409 },
  DOMAIN_TAKEN: { status: 409 },
  /** Another operation on the tenant holds its lock. */
  TENANT_LOCKED: { status: 409 },
  /** The tenant's status refuses the operation (suspend or resume of a tenant provisioning, failed or being dropped). */
  TENANT_STATE_CONFLICT: { status: 409 },
  /** No server of that name in the registry. */
  SERVER_NOT_FOUND: { status: 404 },
  /** A server of that name, or at that address, is registered already. */
  SERVER_TAKEN: { status: 409 },
  /** Removing a server that holds tenants, or `default` (DATABASE_URL's). */
  SERVER_IN_USE: { status: 409 },
  /** A create pinned to a server that is draining, disabled or full. */
  SERVER_NOT_ACCEPTING: { status: 409 },
  /** `servers add`: the URL does not answer, its login is refused, or its role may not create databases and roles. */
  SERVER_UNUSABLE: { status: 400 },
  /** `attach`: the URL does not answer, its login is refused, or it names a superuser (nothing is recorded). */
  DATABASE_UNUSABLE: { status: 400 },
  /** `attach`: that database is a tenant of this catalog already, or one Silo made (it carries a Silo mark). */
  DATABASE_TAKEN: { status: 409 },
  /** `attach`: the database's own tables conflict with the tenant migrations (nothing was changed there). */
  SCHEMA_CONFLICT: { status: 409 },
  /** `move`: this tenant cannot be moved so (attached, its schema not the newest, already there, or the target holds a database or role of its name). */
  MOVE_REFUSED: { status: 409 },
  /** A fleet migration (`POST /migrations`, `tenants migrate --all`) while another one runs, in any instance or CLI. */
  MIGRATION_RUNNING: { status: 409 },
  /** `export`: an attached tenant whose schema is its own (`--no-migrate`): an import could not rebuild it. */
  EXPORT_REFUSED: { status: 409 },
  /** `import`: the file is corrupt, truncated, not a Silo tenant archive, of an unknown format version, or names a table or sequence the tenant migrations do not make (nothing is left made). */
  ARCHIVE_INVALID: { status: 400 },
  /** `import`: the archive is from a newer tenant schema than this code's newest migration. */
  ARCHIVE_SCHEMA_NEWER: { status: 409 },
  /** The server a tenant or a pinned create needs does not answer now. */
  SERVER_UNAVAILABLE: { status: 503, retryAfter: 5 },
  /** No active server with room and reachable: nowhere to place a new tenant. */
  NO_SERVER_AVAILABLE: { status: 503, retryAfter: 30 },
  PAYLOAD_TOO_LARGE: { status: 413 },
  UNSUPPORTED_MEDIA_TYPE: { status: 415 },
  REQUEST_TIMEOUT: { status: 408 },
  HEADERS_TOO_LARGE: { status: 431 },
  EXPECTATION_FAILED: { status: 417 },
  SHUTTING_DOWN: { status: 503, retryAfter: 1 },
  /** Start-up and CLI: the configuration (environment, SECRET_KEY, ADMIN_HOST) cannot work. */
  CONFIG_INVALID: { status: 500 },
  /** Start-up: the catalog database is gone while tenant databases that carry its mark remain. */
  CATALOG_MISSING: { status: 500 },
  PROVISIONING_FAILED: { status: 500 },
  /** A move stopped before its switch: the tenant is served from its source as before, and the half-made copy is gone. */
  MOVE_FAILED: { status: 500 },
  INTERNAL_ERROR: { status: 500 }
} as const satisfies Record<string, { status: number, retryAfter?: number }>

export type ErrorCode = keyof typeof ERRORS

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[]

/** The one HTTP status of `code`. */
export const statusOf = (code: ErrorCode): number => ERRORS[code].status

/** The `Retry-After` (seconds) `code` is sent with unless a throw site says otherwise. */
export const retryAfterOf = (code: ErrorCode): number | undefined => {
  const entry: { status: number, retryAfter?: number } = ERRORS[code]
  return entry.retryAfter
}

export interface SiloErrorOptions {
  /** Seconds a client should wait before retrying (sent as `Retry-After`); the table's default when left out. */
  retryAfter?: number
  cause?: unknown
}

export class SiloError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  readonly retryAfter: number | undefined

  constructor (code: ErrorCode, message: string, options: SiloErrorOptions = {}) {
    const statusCode = statusOf(code)
    // Refusing bad input is routine, not a fault, and no one reads its stack: capturing one
    // through Fastify's hook chain was a fifth of the CPU of a 404. A 5xx keeps its stack.
    const stackTraceLimit = Error.stackTraceLimit
    if (statusCode < 500) Error.stackTraceLimit = 0
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    Error.stackTraceLimit = stackTraceLimit
    this.name = 'SiloError'
    this.code = code
    this.statusCode = statusCode
    this.retryAfter = options.retryAfter ?? retryAfterOf(code)
  }
}

export const hostInvalid = (message = 'Host header is missing or malformed') =>
  new SiloError('HOST_INVALID', message)

export const tenantNotFound = (host: string) =>
  new SiloError('TENANT_NOT_FOUND', `No tenant is served at ${host}`)

export const tenantSuspended = () =>
  new SiloError('TENANT_SUSPENDED', 'This tenant is suspended')

export const tenantUnavailable = (message: string, cause?: unknown, retryAfter?: number) =>
  new SiloError('TENANT_UNAVAILABLE', message, { cause, ...(retryAfter === undefined ? {} : { retryAfter }) })

export const tenantBusy = () =>
  new SiloError('TENANT_BUSY', 'No database connection became free in time')

export const catalogUnavailable = (cause?: unknown) =>
  new SiloError('CATALOG_UNAVAILABLE', 'The tenant catalog cannot be reached', { cause })

/** Every catalog connection stayed taken for the whole acquire timeout (the catalog answers; this process has too much under way). */
export const catalogBusy = (cause?: unknown) =>
  new SiloError('CATALOG_BUSY', 'No catalog connection became free in time', { cause })

export const shuttingDown = () =>
  new SiloError('SHUTTING_DOWN', 'This instance is shutting down; retry the request')

export const validationFailed = (message: string) =>
  new SiloError('VALIDATION_FAILED', message)

export const notFound = (message = 'Not found') =>
  new SiloError('NOT_FOUND', message)

export const tenantLocked = (slug: string) =>
  new SiloError('TENANT_LOCKED', `Another operation on tenant ${slug} is in progress`)

export const tenantStateConflict = (slug: string, status: string) =>
  new SiloError('TENANT_STATE_CONFLICT', `Tenant ${slug} is ${status}`)

export const migrationRunning = (id: string | undefined) =>
  new SiloError('MIGRATION_RUNNING', `A fleet migration is running${id === undefined ? '' : ` (${id})`}: one runs at a time; follow it${id === undefined ? '' : ` at GET /migrations/${id}`}`)

export const serverNotFound = (name: string) =>
  new SiloError('SERVER_NOT_FOUND', `No server named ${name}`)

export const isSiloError = (error: unknown): error is SiloError => error instanceof SiloError
