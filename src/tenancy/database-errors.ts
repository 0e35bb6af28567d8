import { isConnectionException, isSessionEnded, isUnavailable } from '../db/sqlstate.js'
import { SiloError, tenantBusy, tenantUnavailable } from '../errors.js'

/** Network errors of the driver: the database server cannot be reached. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN'])

/**
 * A FATAL (or PANIC) error ends the session: whatever its SQLSTATE, the server refused or
 * dropped this connection, as with 55000 "database is not currently accepting connections"
 * (ALLOW_CONNECTIONS false) or 42501 at login (CONNECT revoked). A request's own mistakes are
 * ERRORs. (`severity` follows the server's lc_messages; when translated, the SQLSTATE checks remain.)
 */
function endedSession (severity: unknown): boolean {
  return severity === 'FATAL' || severity === 'PANIC'
}

/**
 * True when a query's error means its connection is finished (the server ended the session,
 * or the socket is gone): such a connection must not go back to the pool for another request.
 */
export function connectionLost (error: unknown): boolean {
  const { code, message, severity } = error as { code?: string, message?: string, severity?: string }
  return endedSession(severity) ||
    (typeof code === 'string' && NETWORK_CODES.has(code)) || isConnectionException(error) || isSessionEnded(error) ||
    (typeof message === 'string' && /Connection terminated/i.test(message))
}

/**
 * Turns an error from a tenant's database into the contract's 503s, or returns null when it is
 * not about availability. Messages never carry SQL, host names or credentials.
 */
export function classifyDatabaseError (error: unknown): SiloError | null {
  if (error instanceof SiloError) return error
  const { name, code, message, severity } = error as { name?: string, code?: string, message?: string, severity?: string }
  if (name === 'KnexTimeoutError') return tenantBusy()
  // SQLSTATEs that mean "this tenant's database cannot serve now", not "this request is wrong" (src/db/sqlstate.ts).
  if (endedSession(severity) || (typeof code === 'string' && NETWORK_CODES.has(code)) || isUnavailable(error)) {
    return tenantUnavailable('The tenant database is unavailable', error)
  }
  if (typeof message === 'string' && /Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(message)) {
    return tenantUnavailable('The tenant database is unavailable', error)
  }
  return null
}
