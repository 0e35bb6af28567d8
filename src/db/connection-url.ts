import { connectionFromUrl, type PgConnection } from './knex-config.js'
import { validationFailed } from '../errors.js'

/** Connection-string parameters that make the driver read a local file. */
const FILE_PARAMETERS = ['sslcert', 'sslkey', 'sslrootcert', 'sslcrl']

/**
 * A postgres:// URL given by an operator (`servers add`, `attach`) as connection settings. A
 * malformed one is refused without being repeated: it may hold a password. `what` names it in
 * messages ("The admin URL", "The database URL").
 */
export function parseConnectionUrl (url: string, what: string): PgConnection {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw validationFailed(`${what} is not a URL: expected postgres://user:password@host:port/database`)
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw validationFailed(`${what} must start with postgres:// or postgresql://`)
  if (parsed.hostname === '') throw validationFailed(`${what} names no host`)
  // pg-connection-string reads the files these name, on the machine of whoever gives the URL
  // (over the admin API, the service's): a token holder could probe its files through them.
  const files = FILE_PARAMETERS.filter((parameter) => parsed.searchParams.has(parameter))
  if (files.length > 0) {
    throw validationFailed(`${what} may not name files (${files.join(', ')}): use sslmode=require or verify-full, checked against the system's certificate authorities`)
  }
  try {
    return connectionFromUrl(url)
  } catch {
    throw validationFailed(`${what} cannot be read as a PostgreSQL connection string`)
  }
}
