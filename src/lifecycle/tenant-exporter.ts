import { createWriteStream } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import pg from 'pg'
import { to as copyTo } from 'pg-copy-streams'
import { unreadableCredential, type CatalogStore } from '../catalog/catalog-store.js'
import { tenantConnection } from '../catalog/tenant-connection.js'
import { ARCHIVE_FORMAT_VERSION } from '../db/archive-format.js'
import { ArchiveWriter } from '../db/archive-writer.js'
import { isUndefinedTable } from '../db/sqlstate.js'
import { columnNames, sequenceValues, tenantSequences, tenantTables } from '../db/tenant-tables.js'
import { SiloError, tenantStateConflict, tenantUnavailable } from '../errors.js'
import { tenantNotFoundBySlug } from './provisioner.js'
import { assertSlug } from './tenant-names.js'

export interface ExportResult {
  slug: string
  path: string
  schemaVersion: string | null
  tables: number
  rows: number
  sequences: number
  /** Size of the file written (compressed). */
  bytes: number
  durationMs: number
}

/** Statuses whose database is not whole: being made, left half-made, or being dropped. */
const NOT_EXPORTABLE = new Set(['provisioning', 'failed', 'dropping'])

/**
 * Writes a tenant archive (src/db/archive-format.ts) of `slug` to `path` while it serves: one
 * connection as the tenant's own role, in one REPEATABLE READ READ ONLY transaction, so every
 * table is read at one point in time, with COPY (text format) streamed through gzip to
 * `<path>.partial`, synced and renamed to `path` only once complete (an existing file is replaced
 * at that moment only). A failure removes the partial file. Active and suspended tenants may be
 * exported; an attached one only if its schema is Silo's (the tenant migrations).
 */
export async function exportTenant (catalog: CatalogStore, slug: string, path: string): Promise<ExportResult> {
  assertSlug(slug)
  const began = performance.now()
  const tenant = await catalog.tenantBySlug(slug)
  if (tenant === null) throw tenantNotFoundBySlug(slug)
  if (NOT_EXPORTABLE.has(tenant.status)) throw tenantStateConflict(slug, tenant.status)
  if (!tenant.schemaManaged) throw new SiloError('EXPORT_REFUSED', `Tenant ${slug} is attached with a schema of its own (--no-migrate): an archive holds tenants of the tenant migrations only`)
  const unreadable = unreadableCredential(tenant)
  if (unreadable !== undefined) throw tenantUnavailable(`The credential of tenant ${slug} cannot be read here`, unreadable)

  const partial = `${path}.partial`
  const client = new pg.Client({ ...tenantConnection(tenant, `silo-export:${slug}`), connectionTimeoutMillis: 5000 })
  client.on('error', () => {}) // a session ended under it fails its next query instead
  const writer = new ArchiveWriter(createWriteStream(partial, { mode: 0o600 }))
  try {
    await client.connect()
    // Values written as any server reads them back, whatever this one's settings (DateStyle 'SQL, DMY', say).
    await client.query("set datestyle = 'ISO, YMD'; set intervalstyle = 'postgres'; set timezone = 'UTC'; set extra_float_digits = 3; set bytea_output = 'hex'")
    await client.query('begin isolation level repeatable read read only')
    const schemaVersion = await newestMigration(client)
    const tables = await tenantTables(client)
    const sequences = await sequenceValues(client, await tenantSequences(client))
    const { rows: [server] } = await client.query<{ version: string }>("select current_setting('server_version_num') as version")
    await writer.header({ formatVersion: ARCHIVE_FORMAT_VERSION, schemaVersion, slug, exportedAt: new Date().toISOString(), postgres: server?.version ?? '' })
    let rows = 0
    for (const table of tables) {
      const data: AsyncIterable<Buffer> | Buffer[] = table.columns.length === 0 ? [] : client.query(copyTo(`copy ${table.sql} (${table.columns.join(', ')}) to stdout`))
      rows += await writer.table({ schema: table.schema, name: table.name, columns: columnNames(table) }, data)
    }
    for (const sequence of sequences) await writer.sequence(sequence)
    await client.query('commit')
    await writer.end()
    const size = await syncFile(partial)
    await rename(partial, path)
    return { slug, path, schemaVersion, tables: tables.length, rows, sequences: sequences.length, bytes: size, durationMs: performance.now() - began }
  } catch (error) {
    writer.abort(error as Error)
    await writer.closed()
    await rm(partial, { force: true })
    throw error
  } finally {
    await client.end().catch(() => {})
  }
}

/** Flushes the file to disk (a renamed archive is a whole one, even after a crash); returns its size. */
async function syncFile (path: string): Promise<number> {
  const file = await open(path, 'r+')
  try {
    await file.sync()
    return (await file.stat()).size
  } finally {
    await file.close()
  }
}

/** The newest tenant migration the database records (null: never migrated). */
async function newestMigration (client: pg.Client): Promise<string | null> {
  try {
    await client.query('savepoint newest_migration')
    const { rows } = await client.query<{ name: string }>('select name from knex_migrations order by name desc limit 1')
    return rows[0]?.name ?? null
  } catch (error) {
    if (!isUndefinedTable(error)) throw error
    await client.query('rollback to savepoint newest_migration')
    return null
  }
}
