import { SiloError } from '../errors.js'

/**
 * A tenant archive (`tenants export`, `tenants import`): gzip-compressed UTF-8 text, one line per
 * record, so that it streams both ways and a person can read it with `zcat`:
 *
 *     silo-tenant-archive {"formatVersion":1,"schemaVersion":"…","slug":"…","exportedAt":"…","postgres":"…"}
 *     table {"schema":"public","name":"articles","columns":["id","title",…]}
 *     <the table's rows in COPY text format, one line each>
 *     \.
 *     …more tables…
 *     sequence {"schema":"public","name":"articles_id_seq","lastValue":"42","isCalled":true}
 *     end {"tables":1,"rows":{"public.articles":42},"sequences":1,"sha256":"…"}
 *
 * COPY's text format escapes newlines, tabs and backslashes inside values, so a row is one line
 * and a line `\.` never is one. The end line's SHA-256 covers every byte before it: with gzip's
 * own CRC, the row counts and the end line that must come last, a corrupt or cut file is refused.
 */
export const ARCHIVE_FORMAT = 'silo-tenant-archive'
export const ARCHIVE_FORMAT_VERSION = 1

/** Keywords of the record lines that follow the first. */
export const TABLE_LINE = 'table'
export const SEQUENCE_LINE = 'sequence'
export const END_LINE = 'end'
/** The line after a table's rows. */
export const ROWS_END = '\\.'

export interface ArchiveHeader {
  formatVersion: number
  /** The newest tenant migration recorded in the database when it was exported (null: none). */
  schemaVersion: string | null
  /** The tenant it was exported from (for the reader: an import takes a slug of its own). */
  slug: string
  exportedAt: string
  /** PostgreSQL's version where it was exported (`server_version_num`), for the reader. */
  postgres: string
}

export interface ArchiveTable {
  schema: string
  name: string
  /** Unquoted column names, in the order of the COPY rows. */
  columns: string[]
}

export interface ArchiveSequence {
  schema: string
  name: string
  /** A bigint, as text. */
  lastValue: string
  isCalled: boolean
}

export interface ArchiveEnd {
  tables: number
  /** Rows per table, by `schema.name`. */
  rows: Record<string, number>
  sequences: number
  /** Hex SHA-256 of every uncompressed byte before the end line. */
  sha256: string
}

export const tableKey = (table: Pick<ArchiveTable, 'schema' | 'name'>): string => `${table.schema}.${table.name}`

export const archiveInvalid = (message: string, cause?: unknown): SiloError =>
  new SiloError('ARCHIVE_INVALID', message, cause === undefined ? {} : { cause })

const nonEmpty = (value: unknown): boolean => typeof value === 'string' && value !== ''
const FITS = {
  string: nonEmpty,
  number: (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value),
  boolean: (value: unknown) => typeof value === 'boolean',
  'string[]': (value: unknown) => Array.isArray(value) && value.every(nonEmpty),
  'string|null': (value: unknown) => value === null || nonEmpty(value),
  object: (value: unknown) => typeof value === 'object' && value !== null && !Array.isArray(value)
} as const

/** A record line's JSON, checked to be an object with the fields `shape` names of the types it gives. */
export function parseRecord<T> (keyword: string, text: string, shape: Record<string, keyof typeof FITS>): T {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw archiveInvalid(`The archive's ${keyword} line is not valid JSON`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw archiveInvalid(`The archive's ${keyword} line is not a JSON object`)
  const record = value as Record<string, unknown>
  for (const [field, type] of Object.entries(shape)) {
    if (!FITS[type](record[field])) throw archiveInvalid(`The archive's ${keyword} line has no valid ${field}`)
  }
  return record as T
}
