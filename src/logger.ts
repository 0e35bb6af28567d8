import { pino, stdSerializers, type Logger, type DestinationStream, type LoggerOptions } from 'pino'

const CENSOR = '[redacted]'

/** Keys whose values are secrets wherever they sit inside a logged error (compared lowercase). */
const SECRET_KEYS = new Set(['password', 'token', 'secretkey', 'secret_key', 'connectionstring', 'authorization', 'cookie'])

/** Worth scrubbing: a URL (which may carry `user:password@`) or anything naming a password. */
const MAY_HOLD_CREDENTIALS = /:\/\/|password/i
/** `scheme://user:password@host`: keeps the user and the host, drops the password. */
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@"']*):[^\s@"']*@/gi
/** libpq key/value connection strings: `password=secret`. */
const KEYWORD_PASSWORD = /\b(password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s'",;]+)/gi
/** SQL that sets a password (`CREATE/ALTER ROLE ... PASSWORD '...'`), as a failed query's message quotes it. */
const SQL_PASSWORD = /\b(password\s+)'(?:[^']|'')*'/gi

/** Removes passwords from free text: connection URLs, libpq strings and role DDL. */
export function scrubCredentials (text: string): string {
  if (!MAY_HOLD_CREDENTIALS.test(text)) return text
  return text
    .replace(URL_CREDENTIALS, `$1:${CENSOR}@`)
    .replace(KEYWORD_PASSWORD, `$1${CENSOR}`)
    .replace(SQL_PASSWORD, `$1'${CENSOR}'`)
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

/**
 * A copy of a serialized error as JSON would render it, with secret-named keys censored and
 * every string scrubbed, at any depth (an error may hold its client, whose config holds a password).
 */
function scrubDeep (value: unknown, depth: number, seen: Set<object>): unknown {
  if (typeof value === 'string') return scrubCredentials(value)
  if (value === null || typeof value !== 'object') return value
  if (seen.has(value)) return '[Circular]'
  if (depth > 10) return '[Object]'
  const toJSON = (value as { toJSON?: unknown }).toJSON
  if (typeof toJSON === 'function') return scrubDeep(toJSON.call(value), depth + 1, seen)
  seen.add(value)
  try {
    if (Array.isArray(value)) return value.map((item) => scrubDeep(item, depth + 1, seen))
    const copy: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) {
      copy[key] = SECRET_KEYS.has(key.toLowerCase()) ? CENSOR : scrubDeep(item, depth + 1, seen)
    }
    return copy
  } finally {
    seen.delete(value)
  }
}

/** The merging object with its string values scrubbed (a copy, only when one changes); objects are left to serializers and redaction. */
function scrubTopLevelStrings (object: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined
  for (const [key, value] of Object.entries(object)) {
    if (typeof value !== 'string') continue
    const clean = scrubCredentials(value)
    if (clean !== value) (copy ??= { ...object })[key] = clean
  }
  return copy ?? object
}

/**
 * Errors are where unplanned text reaches the log: a driver's message may quote a connection
 * string, a failed query's SQL may set a password, an error may carry its client's config. The
 * standard serializer keeps message, stack and own properties; this one scrubs them all.
 */
const errorSerializer = (error: unknown): unknown => scrubDeep(stdSerializers.err(error as Error), 0, new Set())

/**
 * Silo's logger. Request headers that carry secrets are redacted, and so is anything logged
 * under a key that names one in the first two levels of an object; errors are scrubbed at any
 * depth, and so are the message and the top-level strings of every line.
 */
export function createLogger (level: string, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    redact: {
      paths: [
        'req.headers.authorization', 'req.headers.cookie',
        'password', '*.password', 'token', '*.token', 'secretKey', '*.secretKey', 'connectionString', '*.connectionString'
      ],
      censor: CENSOR
    },
    serializers: { err: errorSerializer, error: errorSerializer },
    hooks: {
      logMethod (args, method) {
        for (let index = 0; index < args.length; index++) {
          const arg: unknown = args[index]
          if (typeof arg === 'string') args[index] = scrubCredentials(arg)
          else if (index === 0 && isPlainObject(arg)) args[index] = scrubTopLevelStrings(arg)
        }
        method.apply(this, args)
      }
    }
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}
