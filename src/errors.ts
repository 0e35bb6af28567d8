/**
 * Errors are values with a stable `code`: the one error handler (src/error-handler.ts)
 * turns them into `{ statusCode, code, error, message }`.
 */
export type ErrorCode =
  | 'HOST_INVALID'
  | 'TENANT_NOT_FOUND'
  | 'TENANT_SUSPENDED'
  | 'TENANT_UNAVAILABLE'
  | 'TENANT_BUSY'
  | 'CATALOG_UNAVAILABLE'
  | 'CATALOG_BUSY'
  | 'VALIDATION_FAILED'
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'SLUG_TAKEN'
  | 'DOMAIN_TAKEN'
  | 'TENANT_LOCKED'
  | 'CONFIG_INVALID'
  | 'CATALOG_MISSING'
  | 'PROVISIONING_FAILED'
  | 'MIGRATION_FAILED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'SHUTTING_DOWN'
  | 'REQUEST_TIMEOUT'
  | 'HEADERS_TOO_LARGE'
  | 'EXPECTATION_FAILED'
  | 'INTERNAL_ERROR'

export interface SiloErrorOptions {
  /** Seconds a client should wait before retrying (sent as `Retry-After`). */
  retryAfter?: number
  cause?: unknown
}

export class SiloError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  readonly retryAfter: number | undefined

  constructor (code: ErrorCode, statusCode: number, message: string, options: SiloErrorOptions = {}) {
    // Refusing bad input is routine, not a fault, and no one reads its stack: capturing one
    // through Fastify's hook chain was a fifth of the CPU of a 404. A 5xx keeps its stack.
    const stackTraceLimit = Error.stackTraceLimit
    if (statusCode < 500) Error.stackTraceLimit = 0
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    Error.stackTraceLimit = stackTraceLimit
    this.name = 'SiloError'
    this.code = code
    this.statusCode = statusCode
    this.retryAfter = options.retryAfter
  }
}

export const hostInvalid = (message = 'Host header is missing or malformed') =>
  new SiloError('HOST_INVALID', 400, message)

export const tenantNotFound = (host: string) =>
  new SiloError('TENANT_NOT_FOUND', 404, `No tenant is served at ${host}`)

export const tenantSuspended = () =>
  new SiloError('TENANT_SUSPENDED', 403, 'This tenant is suspended')

export const tenantUnavailable = (message: string, cause?: unknown) =>
  new SiloError('TENANT_UNAVAILABLE', 503, message, { retryAfter: 5, cause })

export const tenantBusy = () =>
  new SiloError('TENANT_BUSY', 503, 'No database connection became free in time', { retryAfter: 1 })

export const catalogUnavailable = (cause?: unknown) =>
  new SiloError('CATALOG_UNAVAILABLE', 503, 'The tenant catalog cannot be reached', { retryAfter: 5, cause })

/** Every catalog connection stayed taken for the whole acquire timeout (the catalog answers; this process has too much under way). */
export const catalogBusy = (cause?: unknown) =>
  new SiloError('CATALOG_BUSY', 503, 'No catalog connection became free in time', { retryAfter: 1, cause })

export const shuttingDown = () =>
  new SiloError('SHUTTING_DOWN', 503, 'This instance is shutting down; retry the request', { retryAfter: 1 })

export const validationFailed = (message: string) =>
  new SiloError('VALIDATION_FAILED', 400, message)

export const notFound = (message = 'Not found') =>
  new SiloError('NOT_FOUND', 404, message)

export const isSiloError = (error: unknown): error is SiloError => error instanceof SiloError
