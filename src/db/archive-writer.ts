import { createHash } from 'node:crypto'
import { once } from 'node:events'
import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import {
  ARCHIVE_FORMAT, END_LINE, ROWS_END, SEQUENCE_LINE, TABLE_LINE, tableKey,
  type ArchiveEnd, type ArchiveHeader, type ArchiveSequence, type ArchiveTable
} from './archive-format.js'

const NEWLINE = 0x0a

/**
 * Writes a tenant archive (see archive-format.ts) to `out` through gzip, a chunk at a time with
 * backpressure: memory stays flat whatever the tenant's size. Call header(), then table() for
 * each table, sequence() for each sequence, then end(), which resolves once `out` has it all.
 */
export class ArchiveWriter {
  readonly #gzip = createGzip()
  readonly #hash = createHash('sha256')
  readonly #rows: Record<string, number> = {}
  readonly #written: Promise<void>
  /** Rejects when `out` fails or closes: a write waiting for room stops waiting. */
  readonly #stopped: Promise<never>
  #sequences = 0
  #failure: unknown

  constructor (out: Writable) {
    this.#written = pipeline(this.#gzip, out)
    this.#written.catch((error: unknown) => { this.#failure ??= error })
    this.#stopped = this.#written.then(() => { throw new Error('The archive stream closed early') })
    this.#stopped.catch(() => {})
  }

  async header (header: ArchiveHeader): Promise<void> {
    await this.#line(ARCHIVE_FORMAT, header)
  }

  /** The table's record line, its rows (COPY text, whole lines), then the rows' end; returns the rows written. */
  async table (table: ArchiveTable, rows: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<number> {
    await this.#line(TABLE_LINE, table)
    let count = 0
    let last = NEWLINE
    for await (const chunk of rows) {
      if (chunk.length === 0) continue
      for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) count++
      last = chunk[chunk.length - 1] ?? NEWLINE
      await this.#write(chunk)
    }
    if (last !== NEWLINE) throw new Error(`The rows of ${tableKey(table)} did not end with a whole line`)
    await this.#write(Buffer.from(`${ROWS_END}\n`))
    this.#rows[tableKey(table)] = count
    return count
  }

  async sequence (sequence: ArchiveSequence): Promise<void> {
    await this.#line(SEQUENCE_LINE, sequence)
    this.#sequences++
  }

  /** The end line (counts and the checksum of everything before it); resolves once all is written out. */
  async end (): Promise<ArchiveEnd> {
    const end: ArchiveEnd = { tables: Object.keys(this.#rows).length, rows: this.#rows, sequences: this.#sequences, sha256: this.#hash.digest('hex') }
    await this.#write(Buffer.from(`${END_LINE} ${JSON.stringify(end)}\n`), false)
    this.#gzip.end()
    await this.#written
    return end
  }

  /** Stops writing (a failed export): `out` is destroyed with the gzip stream. */
  abort (error: Error): void {
    this.#gzip.destroy(error)
  }

  /** Resolves once `out` is closed, however it ended. */
  async closed (): Promise<void> {
    await this.#written.catch(() => {})
  }

  async #line (keyword: string, record: object): Promise<void> {
    await this.#write(Buffer.from(`${keyword} ${JSON.stringify(record)}\n`))
  }

  async #write (chunk: Buffer, hashed = true): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure
    if (hashed) this.#hash.update(chunk)
    if (!this.#gzip.write(chunk)) await Promise.race([once(this.#gzip, 'drain'), this.#stopped])
    if (this.#failure !== undefined) throw this.#failure
  }
}
