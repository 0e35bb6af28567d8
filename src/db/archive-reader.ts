import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import {
  ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, END_LINE, ROWS_END, SEQUENCE_LINE, TABLE_LINE, archiveInvalid, parseRecord, tableKey,
  type ArchiveEnd, type ArchiveHeader, type ArchiveSequence, type ArchiveTable
} from './archive-format.js'

/** What a reader is told as it goes; each call is awaited (backpressure), and a throw stops the read. */
export interface ArchiveVisitor {
  table?: (table: ArchiveTable) => Promise<void> | void
  /** Whole rows of the current table, COPY text, newline-terminated (any number of them). */
  rows?: (data: Buffer) => Promise<void> | void
  tableEnd?: (table: ArchiveTable, rows: number) => Promise<void> | void
  sequence?: (sequence: ArchiveSequence) => Promise<void> | void
}

export interface ArchiveContents {
  header: ArchiveHeader
  tables: Array<ArchiveTable & { rows: number }>
  sequences: ArchiveSequence[]
  end: ArchiveEnd
  /** Uncompressed bytes. */
  bytes: number
}

const NEWLINE = 0x0a
/** The first line is short: a file whose first 64 KiB hold no newline is not an archive. */
const HEADER_MAX = 64 * 1024
/** A row is at most what PostgreSQL sends in one (1 GB); a longer line is garbage, not a row. */
const LINE_MAX = 1024 * 1024 * 1024

/**
 * Reads a tenant archive from `input` (gzip) and checks all of it: gzip's integrity, the format
 * and its version, the order of the records, every table's row count and the checksum in the end
 * line, which must come last. Any fault is ARCHIVE_INVALID. Without a visitor it is a validation
 * pass; an import reads the file again with one that loads the rows (and undoes everything when
 * that read fails: a file changed in between is caught there too).
 */
export async function scanArchive (input: Readable, visitor: ArchiveVisitor = {}): Promise<ArchiveContents> {
  const gunzip = createGunzip()
  input.on('error', (error) => gunzip.destroy(error))
  input.pipe(gunzip)
  const hash = createHash('sha256')
  const tables: ArchiveContents['tables'] = []
  const sequences: ArchiveSequence[] = []
  let header: ArchiveHeader | undefined
  let end: ArchiveEnd | undefined
  let table: (ArchiveTable & { rows: number }) | undefined
  let bytes = 0
  let pending: Buffer = Buffer.alloc(0)

  const framing = async (line: Buffer): Promise<void> => {
    const space = line.indexOf(0x20)
    const keyword = (space === -1 ? line : line.subarray(0, space)).toString('utf8')
    const json = space === -1 ? '' : line.subarray(space + 1).toString('utf8')
    if (header === undefined) {
      if (keyword !== ARCHIVE_FORMAT) throw archiveInvalid('The file is not a Silo tenant archive (its first line is not a silo-tenant-archive header)')
      header = parseRecord<ArchiveHeader>('header', json, { formatVersion: 'number', schemaVersion: 'string|null', slug: 'string', exportedAt: 'string', postgres: 'string' })
      if (header.formatVersion !== ARCHIVE_FORMAT_VERSION) throw archiveInvalid(`The archive is in format version ${header.formatVersion}; this Silo reads version ${ARCHIVE_FORMAT_VERSION}`)
      return
    }
    if (end !== undefined) throw archiveInvalid('The archive has data after its end line')
    if (keyword === TABLE_LINE) {
      if (sequences.length > 0) throw archiveInvalid('The archive has a table after its sequences')
      const record = parseRecord<ArchiveTable>('table', json, { schema: 'string', name: 'string', columns: 'string[]' })
      const next = { schema: record.schema, name: record.name, columns: record.columns, rows: 0 }
      if (tables.some((known) => tableKey(known) === tableKey(next))) throw archiveInvalid(`The archive holds table ${tableKey(next)} twice`)
      if (new Set(next.columns).size !== next.columns.length) throw archiveInvalid(`The archive names a column of ${tableKey(next)} twice`)
      tables.push(table = next)
      await visitor.table?.(next)
    } else if (keyword === SEQUENCE_LINE) {
      const record = parseRecord<ArchiveSequence>('sequence', json, { schema: 'string', name: 'string', lastValue: 'string', isCalled: 'boolean' })
      if (!/^-?[0-9]{1,19}$/.test(record.lastValue)) throw archiveInvalid(`The archive's sequence ${tableKey(record)} has no valid value`)
      const sequence = { schema: record.schema, name: record.name, lastValue: record.lastValue, isCalled: record.isCalled }
      sequences.push(sequence)
      await visitor.sequence?.(sequence)
    } else if (keyword === END_LINE) {
      end = parseRecord<ArchiveEnd>('end', json, { tables: 'number', rows: 'object', sequences: 'number', sha256: 'string' })
      checkEnd(end, hash.digest('hex'), tables, sequences)
    } else {
      throw archiveInvalid(`The archive has a line of an unknown kind (${JSON.stringify(keyword.slice(0, 20))})`)
    }
  }

  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      bytes += chunk.length
      const buffer = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      let at = 0
      // The start of the rows of the current table not yet handed on (contiguous lines).
      let rowsFrom = table === undefined ? -1 : 0
      for (let newline = buffer.indexOf(NEWLINE); newline !== -1; newline = buffer.indexOf(NEWLINE, at)) {
        const line = buffer.subarray(at, newline)
        if (table !== undefined) {
          if (line.length === ROWS_END.length && line.toString('latin1') === ROWS_END) {
            await flush(buffer.subarray(rowsFrom, at))
            hash.update(buffer.subarray(at, newline + 1))
            const finished = table
            table = undefined
            rowsFrom = -1
            await visitor.tableEnd?.(finished, finished.rows)
          } else {
            table.rows++
          }
        } else {
          if (end === undefined || line.length > 0) {
            if (end === undefined && !line.toString('latin1').startsWith(`${END_LINE} `)) hash.update(buffer.subarray(at, newline + 1))
            await framing(line)
          }
          if (table !== undefined) rowsFrom = newline + 1
        }
        at = newline + 1
      }
      if (table !== undefined && rowsFrom !== -1 && rowsFrom < at) await flush(buffer.subarray(rowsFrom, at))
      pending = Buffer.from(buffer.subarray(at))
      if (pending.length > (header === undefined ? HEADER_MAX : LINE_MAX)) {
        throw archiveInvalid(header === undefined ? 'The file is not a Silo tenant archive (no header line)' : 'The archive has a line too long to be a row')
      }
    }
  } catch (error) {
    input.destroy()
    throw zlibFault(error)
  }
  if (header === undefined) throw archiveInvalid('The file is not a Silo tenant archive (it is empty)')
  if (end === undefined || pending.length > 0) throw archiveInvalid('The archive is truncated: it has no end line')
  return { header, tables, sequences, end, bytes }

  async function flush (rows: Buffer): Promise<void> {
    if (rows.length === 0) return
    hash.update(rows)
    await visitor.rows?.(rows)
  }
}

function checkEnd (end: ArchiveEnd, sha256: string, tables: ArchiveContents['tables'], sequences: ArchiveSequence[]): void {
  if (end.sha256 !== sha256) throw archiveInvalid('The archive is corrupt: its checksum does not match its contents')
  if (end.tables !== tables.length || end.sequences !== sequences.length) throw archiveInvalid('The archive is corrupt: its end line counts other tables or sequences than it holds')
  const declared = Object.entries(end.rows)
  if (declared.length !== tables.length) throw archiveInvalid('The archive is corrupt: its end line counts the rows of other tables than it holds')
  for (const table of tables) {
    if (end.rows[tableKey(table)] !== table.rows) throw archiveInvalid(`The archive is corrupt: table ${tableKey(table)} holds ${table.rows} rows, its end line says ${String(end.rows[tableKey(table)])}`)
  }
}

/** gzip's own errors in words: not gzip at all, cut short, or damaged. */
function zlibFault (error: unknown): unknown {
  const code = (error as { code?: unknown }).code
  if (typeof code !== 'string' || !code.startsWith('Z_')) return error
  const message = (error as Error).message
  if (/incorrect header check|unknown compression method/.test(message)) return archiveInvalid('The file is not a Silo tenant archive (it is not gzip-compressed)', error)
  if (code === 'Z_BUF_ERROR' || /unexpected end/.test(message)) return archiveInvalid('The archive is truncated (its gzip stream ends early)', error)
  return archiveInvalid(`The archive is corrupt (gzip: ${message})`, error)
}
