import { once } from 'node:events'
import { finished } from 'node:stream/promises'
import type pg from 'pg'
import type { CopyStreamQuery } from 'pg-copy-streams'
import { archiveInvalid } from './archive-format.js'

/**
 * Feeds one COPY ... FROM STDIN at a time on `client` with rows as they are read, waiting for room
 * (backpressure), so a table of any size passes through in chunks. A row PostgreSQL refuses
 * (a value of the wrong type, a constraint) is ARCHIVE_INVALID: the archive does not fit the
 * tenant schema it claims.
 */
export class CopyLoader {
  readonly #client: pg.ClientBase
  #stream: CopyStreamQuery | undefined
  #done: Promise<void> | undefined
  #table = ''

  constructor (client: pg.ClientBase) {
    this.#client = client
  }

  /** Starts loading a table (`copy`: its COPY statement; null for a table without columns, which takes no rows). */
  start (copy: CopyStreamQuery | null, table: string): void {
    this.#table = table
    this.#stream = copy === null ? undefined : this.#client.query(copy)
    this.#done = this.#stream === undefined ? undefined : finished(this.#stream)
    this.#done?.catch(() => {})
  }

  async write (rows: Buffer): Promise<void> {
    const stream = this.#stream
    if (stream === undefined) throw archiveInvalid(`The archive holds rows for ${this.#table}, which has no columns`)
    try {
      if (stream.destroyed) await this.#done
      if (!stream.write(rows)) await Promise.race([once(stream, 'drain'), this.#done])
    } catch (error) {
      throw this.#refused(error)
    }
  }

  /** Ends the table's COPY; resolves once PostgreSQL has every row. */
  async finish (): Promise<number> {
    const stream = this.#stream
    if (stream === undefined) return 0
    stream.end()
    try {
      await this.#done
    } catch (error) {
      throw this.#refused(error)
    }
    this.#stream = undefined
    return stream.rowCount
  }

  #refused (error: unknown): unknown {
    const code = (error as { code?: unknown }).code
    // Class 22 (data exception) and 23 (integrity constraint violation): the rows, not the server.
    if (typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'))) {
      return archiveInvalid(`The rows of ${this.#table} do not fit the tenant schema: ${(error as Error).message}`, error)
    }
    return error
  }
}
