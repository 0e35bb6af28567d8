import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import type { CatalogStore, TenantRecord, TenantSummary } from '../catalog/catalog-store.js'
import { tenantConnection } from '../catalog/tenant-connection.js'
import { archiveInvalid, tableKey, type ArchiveSequence } from '../db/archive-format.js'
import { scanArchive, type ArchiveContents } from '../db/archive-reader.js'
import { tenantMigrations } from '../db/knex-config.js'
import type { DirectoryMigrationSource } from '../db/migration-source.js'
import { advanceSequences, columnNames, tenantSequences, tenantTables, type TenantTable } from '../db/tenant-tables.js'
import { SiloError, validationFailed } from '../errors.js'
import { CopyLoader } from '../db/copy-loader.js'
import type { Provisioner } from './provisioner.js'
import type { ServerFleet } from './server-fleet.js'
import type { TenantMigrator } from './tenant-migrator.js'
import { assertSlug } from './tenant-names.js'

export interface TenantImporterDeps {
  catalog: CatalogStore
  provisioner: Provisioner
  migrator: TenantMigrator
  servers: ServerFleet
  /** The tenant migrations the archive's schema version is judged against: the migrator's (default migrations/tenant). */
  migrations?: DirectoryMigrationSource
}

export interface ImportTenantInput {
  slug: string
  /** The archive file. */
  from: string
  domains: string[]
  name?: string
  /** Pin it to this server; placement chooses otherwise. */
  server?: string
}

export interface ImportResult {
  tenant: TenantSummary
  archive: ArchiveContents
  durationMs: number
}

/**
 * A new tenant made from an archive (`tenants import`: django-tenants' clone_tenant, as a file).
 * The whole file is checked first (see scanArchive) and its schema version against the tenant
 * migrations: a refusal makes nothing. Then the tenant is created by the provisioner, whose
 * 'import' step loads the rows (any failure there, a file changed since the check included, is
 * undone with the rest of the create), so it goes active with its data and serves at once.
 */
export async function importTenant (deps: TenantImporterDeps, input: ImportTenantInput): Promise<ImportResult> {
  const began = performance.now()
  const slug = assertSlug(input.slug)
  // Cheap refusals before reading what may be a large file (the provisioner checks again under its lock).
  const existing = await deps.catalog.tenantBySlug(slug)
  if (existing !== null && existing.status !== 'provisioning' && existing.status !== 'failed') throw new SiloError('SLUG_TAKEN', `Slug ${slug} is taken`)
  const archive = await readArchiveFile(input.from)
  const migrations = deps.migrations ?? tenantMigrations
  const names = (await migrations.getMigrations()).map((file) => migrations.getMigrationName(file))
  const version = archive.header.schemaVersion
  if (version !== null && !names.includes(version)) {
    const latest = names.at(-1)
    if (latest === undefined || version > latest) throw new SiloError('ARCHIVE_SCHEMA_NEWER', `The archive is from tenant schema ${version}, newer than this code's newest migration ${latest ?? '(none)'}: import it with a newer Silo`)
    throw archiveInvalid(`The archive is from tenant schema ${version}, which is not one of this code's tenant migrations`)
  }
  const tenant = await deps.provisioner.create({
    slug,
    domains: input.domains,
    ...(input.name === undefined ? {} : { name: input.name }),
    ...(input.server === undefined ? {} : { server: input.server }),
    load: async (record) => {
      // Older than the newest: loaded where the schema is the archive's, then migrated forward.
      const older = version !== names.at(-1)
      if (older) await rebuildAt(deps, record, names.filter((name) => version !== null && name <= version).length)
      await loadArchive(record, input.from, archive)
      if (older) await deps.migrator.migrate(record)
    }
  })
  return { tenant, archive, durationMs: performance.now() - began }
}

/** The validation pass; a file that cannot be read is VALIDATION_FAILED, one that is not a good archive ARCHIVE_INVALID. */
async function readArchiveFile (path: string): Promise<ArchiveContents> {
  const found = await stat(path).catch((error: NodeJS.ErrnoException) => { throw validationFailed(`Cannot read the archive ${path}: ${error.code ?? error.message}`) })
  if (!found.isFile()) throw validationFailed(`The archive ${path} is not a file`)
  return await scanArchive(createReadStream(path))
}

/**
 * The new tenant's database made again, empty, and migrated up to the archive's schema (its
 * first `steps` migrations): exactly what the migrations made there when it was exported.
 */
async function rebuildAt (deps: TenantImporterDeps, tenant: TenantRecord, steps: number): Promise<void> {
  const { admin, ownership } = await deps.servers.byId(tenant.server.id)
  await ownership.dropDatabase(tenant.database.name)
  await admin.ensureDatabase(tenant.database.name, tenant.database.user, { mark: ownership.mark('tenant') })
  await deps.migrator.withDatabase(tenant, async (db) => {
    for (let step = 0; step < steps; step++) await db.migrate.up()
  })
}

/**
 * The archive's rows loaded into the tenant's database in one transaction, as its own role: each
 * table checked against the database first (every table, column and sequence must be one the
 * migrations made), emptied of what the migrations may have put there, filled with COPY; then
 * the sequences set to the archive's values, and every serial or identity sequence moved past
 * the highest key loaded.
 */
async function loadArchive (tenant: TenantRecord, path: string, archive: ArchiveContents): Promise<void> {
  const client = new pg.Client({ ...tenantConnection(tenant, `silo-import:${tenant.slug}`), connectionTimeoutMillis: 5000 })
  client.on('error', () => {})
  await client.connect()
  try {
    await client.query("set datestyle = 'ISO, YMD'; set intervalstyle = 'postgres'")
    await client.query('begin')
    const tables = await tenantTables(client)
    const targets = matchTables(tables, archive)
    const sequences = new Set((await tenantSequences(client)).map((sequence) => sequence.sql))
    const sequenceSql = (sequence: ArchiveSequence): string => `${client.escapeIdentifier(sequence.schema)}.${client.escapeIdentifier(sequence.name)}`
    const unknown = archive.sequences.find((sequence) => !sequences.has(sequenceSql(sequence)))
    if (unknown !== undefined) throw archiveInvalid(`The archive names sequence ${tableKey(unknown)}, which the tenant migrations do not make`)
    if (targets.size > 0) await client.query(`truncate ${[...targets.values()].map((table) => table.sql).join(', ')}`)
    const loader = new CopyLoader(client)
    await scanArchive(createReadStream(path), {
      table: async (table) => {
        const target = targets.get(tableKey(table))
        if (target === undefined) throw archiveInvalid(`The archive changed since it was checked (table ${tableKey(table)})`)
        loader.start(table.columns.length === 0 ? null : copyFrom(`copy ${target.sql} (${table.columns.map((column) => client.escapeIdentifier(column)).join(', ')}) from stdin`), tableKey(table))
      },
      rows: async (data) => { await loader.write(data) },
      tableEnd: async () => { await loader.finish() },
      sequence: async (sequence) => {
        await client.query('select setval($1::regclass, $2::bigint, $3)', [sequenceSql(sequence), sequence.lastValue, sequence.isCalled])
      }
    })
    await advanceSequences(client, tables)
    await client.query('commit')
  } finally {
    await client.end().catch(() => {})
  }
}

/** Each archive table's table in the database, by `schema.name`; a table or column the database does not have is ARCHIVE_INVALID. */
function matchTables (tables: TenantTable[], archive: ArchiveContents): Map<string, TenantTable> {
  const byName = new Map(tables.map((table) => [tableKey(table), table]))
  const targets = new Map<string, TenantTable>()
  for (const table of archive.tables) {
    const target = byName.get(tableKey(table))
    if (target === undefined) throw archiveInvalid(`The archive names table ${tableKey(table)}, which the tenant migrations do not make (at schema ${archive.header.schemaVersion ?? '(none)'})`)
    const columns = new Set(columnNames(target))
    const missing = table.columns.find((column) => !columns.has(column))
    if (missing !== undefined) throw archiveInvalid(`The archive names column ${JSON.stringify(missing)} of ${tableKey(table)}, which the tenant migrations do not make`)
    targets.set(tableKey(table), target)
  }
  return targets
}
