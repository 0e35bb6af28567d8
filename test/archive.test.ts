// Export and import of one tenant (tenants export / import): round trips through a file on both
// servers (DATABASE_URL's and an embedded one), an archive that is one snapshot while a writer
// writes, an archive of an older schema migrated forward, and every refusal leaving nothing made.
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { gunzipSync, gzipSync } from 'node:zlib'
import { createWriteStream } from 'node:fs'
import t from './helpers/tap.js'
import type { Test } from 'tap'
import pg from 'pg'
import { tenantConnection } from '../src/catalog/tenant-connection.js'
import { ARCHIVE_FORMAT_VERSION, type ArchiveHeader, type ArchiveTable } from '../src/db/archive-format.js'
import { ArchiveWriter } from '../src/db/archive-writer.js'
import { tenantMigrationsDir } from '../src/db/paths.js'
import { DirectoryMigrationSource } from '../src/db/migration-source.js'
import { Provisioner } from '../src/lifecycle/provisioner.js'
import { exportTenant } from '../src/lifecycle/tenant-exporter.js'
import { importTenant, type ImportTenantInput, type TenantImporterDeps } from '../src/lifecycle/tenant-importer.js'
import { TenantMigrator } from '../src/lifecycle/tenant-migrator.js'
import type { Silo } from '../src/silo.js'
import { runCli } from './helpers/cli.js'
import { roleUrl, secondServer } from './helpers/servers.js'
import { createTenant, databaseUrl, tenantFootprint, testApp, testEnv, testSilo } from './helpers/silo.js'
import { eventually } from './helpers/wait.js'

const { silo, app } = await testApp(t)
const second = await secondServer(t)
await silo.serverRegistry.add({ name: 'second', url: second.url })
const dir = await mkdtemp(join(tmpdir(), 'silo-archive-'))
t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
const file = (name: string): string => join(dir, name)

type Row = Record<string, unknown>
/** Every row of `table` in the tenant's database, by id, as JSON would carry it (dates as ISO text). */
const rowsOf = async (on: Silo, slug: string, table: string): Promise<Row[]> =>
  JSON.parse(JSON.stringify(await on.withTenant(slug, async (db) => (await db.raw('select * from ?? order by id', [table])).rows))) as Row[]
const refusal = async (promise: Promise<unknown>): Promise<{ code?: string, message: string }> =>
  await promise.then(() => ({ message: 'it succeeded' }), (error: unknown) => error as { code?: string, message: string })
const nothingMade = async (t: Test, on: Silo, slug: string): Promise<void> => {
  t.same(await tenantFootprint(on, slug), { catalog: null, database: false, role: false }, `nothing of ${slug} exists: no catalog entry, database or role`)
}
const LATEST = (await new TenantMigrator().latestVersion()) ?? ''

/** A gzip archive written with the real writer, from records given here (to say what the exporter would not). */
async function writeArchive (path: string, header: Partial<ArchiveHeader>, tables: Array<ArchiveTable & { rows: string }>): Promise<void> {
  const writer = new ArchiveWriter(createWriteStream(path))
  await writer.header({ formatVersion: ARCHIVE_FORMAT_VERSION, schemaVersion: LATEST, slug: 'made', exportedAt: new Date().toISOString(), postgres: '150000', ...header })
  for (const { rows, ...table } of tables) await writer.table(table, [Buffer.from(rows)])
  await writer.end()
}

// A Silo without a template whose provisioner migrates with one migration more (see newerSchema).
const untemplated = await testSilo(t, { TENANT_TEMPLATE: 'off' })
const newer = await newerSchema(untemplated)

const tricky = [
  { title: 'line\nbreak', body: 'tab\there\r\nand CRLF\rand CR' },
  { title: 'back\\slash \\N \\. \\\\', body: '\\.\n\\.\n' },
  { title: 'unicode ü 中文 🙂 \u2028', body: 'zero\u200bwidth, NUL-free, é composed e\u0301' },
  { title: 'quotes \' " `', body: '' },
  { title: '\\', body: 'x'.repeat(100000) },
  { title: '\\N', body: 'a row whose text is \\N, not NULL' }
]

t.test('a tenant exported and imported has the same rows column by column, its identity counter goes on past the highest id, and it serves at once', async (t) => {
  await createTenant(silo, 'source', { seed: true })
  await silo.withTenant('source', async (db) => {
    await db('articles').insert(tricky.map((row, i) => ({ ...row, published: i % 2 === 0, created_at: new Date(Date.UTC(2020, 0, 1 + i, 12, 0, 0, 123)) })))
    // An id above the sequence (set by hand), and gaps: the counter must go past the highest id, not the sequence.
    await db.raw("insert into articles (id, title, body) overriding system value values (5000, 'high', 'above the sequence')")
    await db('articles').where('title', 'quotes \' " `').delete()
  })
  const source = await rowsOf(silo, 'source', 'articles')
  const exported = await exportTenant(silo.catalog, 'source', file('source.silo.gz'))
  t.match(exported, { slug: 'source', schemaVersion: LATEST, tables: 1, rows: source.length, sequences: 1 })
  t.notOk(await stat(file('source.silo.gz.partial')).then(() => true, () => false), 'no .partial file is left')

  const { tenant, archive } = await importTenant(silo, { slug: 'copy', from: file('source.silo.gz'), domains: ['copy.test', 'www.copy.test'], name: 'The copy', server: 'default' })
  t.match(tenant, { slug: 'copy', status: 'active', schemaVersion: LATEST, server: 'default', name: 'The copy', domains: ['copy.test', 'www.copy.test'] })
  t.equal(archive.header.slug, 'source')
  t.same(await rowsOf(silo, 'copy', 'articles'), source, 'every row equal, column by column')

  const served = await app.inject({ url: '/articles?limit=100', headers: { host: 'www.copy.test' } })
  t.equal(served.statusCode, 200, 'it serves at once on its domain')
  t.equal(served.json().items.length, source.length)
  const posted = await app.inject({ method: 'POST', url: '/articles', headers: { host: 'copy.test' }, payload: { title: 'after import', body: 'b' } })
  t.equal(posted.statusCode, 201)
  t.ok(Number(posted.json().id) > 5000, `a new article gets an id past the highest (${posted.json().id})`)
  t.equal((await app.inject({ url: '/articles/5000', headers: { host: 'copy.test' } })).json().title, 'high')

  // The same file onto the embedded server (PostgreSQL 18 beside the machine's 15).
  const { tenant: elsewhere } = await importTenant(silo, { slug: 'copy-two', from: file('source.silo.gz'), domains: ['copy-two.test'], server: 'second' })
  t.equal(elsewhere.server, 'second', 'imported onto --server second')
  t.same(await rowsOf(silo, 'copy-two', 'articles'), source, 'its rows equal too')
  const onSecond = await app.inject({ method: 'POST', url: '/articles', headers: { host: 'copy-two.test' }, payload: { title: 'there', body: 'b' } })
  t.equal(onSecond.statusCode, 201, 'and it serves from there')
  t.ok(Number(onSecond.json().id) > 5000)
  t.equal((await silo.catalog.tenantBySlug('source'))?.status, 'active', 'the source serves on, untouched')
})

/**
 * A copy of the tenant migrations plus one more (a nullable column with a data migration, and a
 * table with a foreign key, a serial key and NULLs), on a Silo without a template so that its
 * provisioner migrates with them: the schema an older archive is migrated forward to.
 */
async function newerSchema (on: Silo): Promise<TenantImporterDeps & { provisioner: Provisioner, latest: string }> {
  const migrationsDir = await mkdtemp(join(tmpdir(), 'silo-archive-migrations-'))
  t.teardown(async () => { await rm(migrationsDir, { recursive: true, force: true }) })
  // ES modules by their package, as in the project: without it Node guesses each file's kind from
  // its syntax, which fails under tap's module hooks (ERR_REQUIRE_CYCLE_MODULE).
  await writeFile(join(migrationsDir, 'package.json'), '{ "type": "module" }\n')
  for (const name of await readdir(tenantMigrationsDir)) {
    if (name.endsWith('.js')) await copyFile(new URL(name, tenantMigrationsDir), join(migrationsDir, name))
  }
  await writeFile(join(migrationsDir, '20991231000001_notes.js'), `
export async function up (knex) {
  await knex.raw('alter table articles add column summary text')
  await knex.raw("update articles set summary = 'was: ' || title")
  await knex.raw('create table notes (id serial primary key, article_id bigint not null references articles (id), note text, rating numeric, tags text[], meta jsonb)')
}
export async function down (knex) {
  await knex.raw('drop table notes')
  await knex.raw('alter table articles drop column summary')
}
`)
  const migrations = new DirectoryMigrationSource(pathToFileURL(`${migrationsDir}/`))
  const migrator = new TenantMigrator(migrations)
  const provisioner = new Provisioner({ catalog: on.catalog, servers: on.servers, migrator, prefix: on.config.tenantDbPrefix })
  return { catalog: on.catalog, servers: on.servers, migrator, migrations, provisioner, latest: '20991231000001_notes' }
}

t.test('an archive of an older schema is loaded at that schema, then migrated to the newest', async (t) => {
  const archive = file('source.silo.gz')
  const { tenant } = await importTenant(newer, { slug: 'forward', from: archive, domains: ['forward.test'] })
  t.equal(tenant.schemaVersion, newer.latest, 'the catalog records the newest schema')
  const rows = await rowsOf(untemplated, 'forward', 'articles')
  const source = await rowsOf(silo, 'source', 'articles')
  t.same(rows.map(({ summary, ...row }) => row), source, 'every row as exported')
  t.ok(rows.every((row) => row.summary === `was: ${String(row.title)}`), "the newer migration's data change ran over the loaded rows")
  t.same(await rowsOf(untemplated, 'forward', 'notes'), [], 'its new table is there, empty')
})

t.test('NULLs, arrays, JSON and a foreign key round-trip, and a serial counter goes on too', async (t) => {
  await newer.provisioner.create({ slug: 'noted', domains: ['noted.test'] })
  await untemplated.withTenant('noted', async (db) => {
    const [first, secondRow] = await db('articles').insert([{ title: 'one', body: 'b', summary: null }, { title: 'two', body: 'b', summary: 's\tt' }]).returning('id') as Array<{ id: string }>
    await db('notes').insert([
      { article_id: first?.id, note: null, rating: null, tags: null, meta: null },
      { article_id: secondRow?.id, note: 'n\\n', rating: '3.14159265358979323846', tags: ['a', 'b c', '{x}', 'NULL', null], meta: JSON.stringify({ k: ['v', null, 1.5], s: 'line\nbreak' }) }
    ])
  })
  await exportTenant(untemplated.catalog, 'noted', file('noted.silo.gz'))
  await importTenant(newer, { slug: 'noted-copy', from: file('noted.silo.gz'), domains: ['noted-copy.test'] })
  for (const table of ['articles', 'notes']) t.same(await rowsOf(untemplated, 'noted-copy', table), await rowsOf(untemplated, 'noted', table), `${table}: equal, NULLs included`)
  const next = await untemplated.withTenant('noted-copy', async (db) => await db('notes').insert({ article_id: 1, note: 'next' }).returning('id') as Array<{ id: number }>)
  t.equal(next[0]?.id, 3, 'the serial counter continues after the highest id')
})

t.test('an export while a writer writes pairs of rows is one snapshot: never half a pair', async (t) => {
  await newer.provisioner.create({ slug: 'pairs', domains: ['pairs.test'] })
  const record = await untemplated.catalog.tenantBySlug('pairs')
  if (record === null) throw new Error('no tenant')
  const writer = new pg.Client(tenantConnection(record, 'archive-test-writer'))
  await writer.connect()
  t.teardown(async () => { await writer.end() })
  const pair = async (n: number): Promise<void> => {
    await writer.query('with a as (insert into articles (title, body) values ($1, \'pair\') returning id) insert into notes (article_id, note) select id, $1 from a', [`pair ${n}`])
  }
  for (let n = 0; n < 20; n++) await pair(n)
  // The writer holds articles locked: the export's copy of articles waits for it (its snapshot
  // taken already); meanwhile a pair is committed, then notes are copied. A copy that took a new
  // snapshot for each table would hold the pair's note without its article.
  await writer.query('begin')
  await writer.query('lock table articles in access exclusive mode')
  const exporting = exportTenant(untemplated.catalog, 'pairs', file('pairs.silo.gz'))
  const watcher = new pg.Client({ connectionString: databaseUrl() })
  await watcher.connect()
  t.teardown(async () => { await watcher.end() })
  t.ok(await eventually(async () => (await watcher.query("select 1 from pg_stat_activity where application_name = 'silo-export:pairs' and wait_event_type = 'Lock'")).rowCount === 1), 'the export waits for the articles table')
  await writer.query("insert into articles (title, body) values ('during', 'pair')")
  await writer.query("insert into notes (article_id, note) select id, 'during' from articles where title = 'during'")
  await writer.query('commit')
  const exported = await exporting
  t.equal(exported.rows, 40, 'the archive holds the 20 pairs committed before the export began')
  for (let n = 20; n < 30; n++) await pair(n)
  await importTenant(newer, { slug: 'pairs-copy', from: file('pairs.silo.gz'), domains: ['pairs-copy.test'] })
  const articles = await rowsOf(untemplated, 'pairs-copy', 'articles')
  const notes = await rowsOf(untemplated, 'pairs-copy', 'notes')
  t.equal(articles.length, 20)
  t.same(notes.map((note) => note.note).sort(), articles.map((article) => article.title).sort(), 'every note has its article and every article its note')
  t.notOk(articles.some((article) => article.title === 'during'), 'the pair committed during the export is in neither table')
})

t.test('every refusal has its code, and makes nothing', async (t) => {
  const good = await readFile(file('source.silo.gz'))
  const flipped = Buffer.from(good)
  const middle = Math.floor(flipped.length / 2)
  for (let i = middle; i < middle + 16; i++) flipped[i] = (flipped[i] ?? 0) ^ 0xff
  await writeFile(file('flipped.gz'), flipped)
  await writeFile(file('cut.gz'), good.subarray(0, Math.floor(good.length * 0.6)))
  const lines = gunzipSync(good).toString('utf8').split('\n')
  await writeFile(file('no-end.gz'), gzipSync(lines.slice(0, -2).join('\n') + '\n'))
  await writeFile(file('edited.gz'), gzipSync(gunzipSync(good).toString('utf8').replace('above the sequence', 'above the sequencE')))
  await writeFile(file('other.json.gz'), gzipSync(JSON.stringify({ name: 'another application', version: 3, items: [1, 2, 3] })))
  await writeFile(file('plain.txt'), 'just some text\nnot gzip at all\n')
  await writeFile(file('empty'), '')
  await writeArchive(file('format-2.gz'), { formatVersion: 2 }, [])
  await writeArchive(file('future.gz'), { schemaVersion: '29991231000001_from_the_future' }, [{ schema: 'public', name: 'articles', columns: ['id', 'title', 'body'], rows: '1\ta\tb\n' }])
  await writeArchive(file('unknown-version.gz'), { schemaVersion: '20000101000000_never' }, [])
  await writeArchive(file('secrets.gz'), {}, [{ schema: 'public', name: 'secrets', columns: ['id'], rows: '1\n' }])
  await writeArchive(file('extra-column.gz'), {}, [{ schema: 'public', name: 'articles', columns: ['id', 'title', 'body', 'password'], rows: '1\ta\tb\tc\n' }])
  await writeArchive(file('bad-rows.gz'), {}, [{ schema: 'public', name: 'articles', columns: ['id', 'title', 'body'], rows: 'not a number\ta\tb\n' }])

  const cases: Array<[string, string, RegExp]> = [
    ['flipped.gz', 'ARCHIVE_INVALID', /corrupt|truncated/],
    ['cut.gz', 'ARCHIVE_INVALID', /truncated/],
    ['no-end.gz', 'ARCHIVE_INVALID', /truncated: it has no end line/],
    ['edited.gz', 'ARCHIVE_INVALID', /checksum/],
    ['other.json.gz', 'ARCHIVE_INVALID', /not a Silo tenant archive/],
    ['plain.txt', 'ARCHIVE_INVALID', /not gzip/],
    ['empty', 'ARCHIVE_INVALID', /not a Silo tenant archive|truncated/],
    ['format-2.gz', 'ARCHIVE_INVALID', /format version 2/],
    ['future.gz', 'ARCHIVE_SCHEMA_NEWER', /newer than this code's newest migration/],
    ['unknown-version.gz', 'ARCHIVE_INVALID', /not one of this code's tenant migrations/],
    ['secrets.gz', 'ARCHIVE_INVALID', /table public\.secrets, which the tenant migrations do not make/],
    ['extra-column.gz', 'ARCHIVE_INVALID', /column "password"/],
    ['bad-rows.gz', 'ARCHIVE_INVALID', /do not fit the tenant schema/],
    ['missing.gz', 'VALIDATION_FAILED', /Cannot read the archive/]
  ]
  for (const [name, code, message] of cases) {
    const input: ImportTenantInput = { slug: 'refused', from: file(name), domains: ['refused.test'] }
    const error = await refusal(importTenant(silo, input))
    t.equal(error.code, code, `${name}: ${code}`)
    t.match(error.message, message, `${name}: ${error.message}`)
    await nothingMade(t, silo, 'refused')
  }
  t.equal((await refusal(importTenant(silo, { slug: 'copy', from: file('source.silo.gz'), domains: ['other.test'] }))).code, 'SLUG_TAKEN')
  t.equal((await silo.catalog.tenantBySlug('copy'))?.status, 'active', 'the tenant of that slug is untouched')
  t.equal((await refusal(importTenant(silo, { slug: 'refused', from: file('source.silo.gz'), domains: ['copy.test'] }))).code, 'DOMAIN_TAKEN')
  await nothingMade(t, silo, 'refused')
  t.equal((await refusal(importTenant(silo, { slug: 'refused', from: file('source.silo.gz'), domains: ['refused.test'], server: 'nowhere' }))).code, 'SERVER_NOT_FOUND')
  await nothingMade(t, silo, 'refused')

  t.equal((await refusal(exportTenant(silo.catalog, 'nobody', file('nobody.gz')))).code, 'TENANT_NOT_FOUND')
  t.same((await readdir(dir)).filter((name) => name.startsWith('nobody')), [], 'an export refused writes no file')
  await silo.provisioner.setStatus('copy', 'suspended')
  t.ok((await exportTenant(silo.catalog, 'copy', file('suspended.gz'))).rows > 0, "a suspended tenant's data can still be exported")
  await silo.provisioner.setStatus('copy', 'active')

  const own = new URL(await roleUrl(second.url, 'own_owner', 'own-password-0451', 'NOSUPERUSER NOCREATEDB NOCREATEROLE'))
  const admin = new pg.Client({ connectionString: second.url })
  await admin.connect()
  await admin.query('create database own owner own_owner')
  await admin.end()
  own.pathname = '/own'
  await silo.attacher.attach({ slug: 'own', url: own.toString(), domains: ['own.test'], migrate: false })
  const ownSchema = await refusal(exportTenant(silo.catalog, 'own', file('own.gz')))
  t.equal(ownSchema.code, 'EXPORT_REFUSED', 'an attached tenant with a schema of its own is refused')
  t.notOk(ownSchema.message.includes('own-password-0451'))
})

t.test('the CLI exports and imports, with exit codes, one-line messages and no password', async (t) => {
  const env = testEnv({ CATALOG_DATABASE: silo.config.catalogDatabase, TENANT_DB_PREFIX: silo.config.tenantDbPrefix })
  const exported = await runCli(['export', 'source', '--out', file('cli.silo.gz')], env)
  t.equal(exported.code, 0, exported.stderr)
  t.match(exported.stdout, /^exported source \(schema \w+\): 1 tables, \d+ rows, 1 sequences, [0-9.]+ MB to .*cli\.silo\.gz \[[0-9.]+ s\]\n$/)
  const imported = await runCli(['import', 'cli-copy', '--from', file('cli.silo.gz'), '--domain', 'cli-copy.test', '--server', 'second'], env)
  t.equal(imported.code, 0, imported.stderr)
  t.match(imported.stdout, /^imported cli-copy from .*cli\.silo\.gz on server second \(database \w+, schema \w+, archive schema \w+\): 1 tables, \d+ rows, at cli-copy\.test \[[0-9.]+ s\]\n$/)
  t.same(await rowsOf(silo, 'cli-copy', 'articles'), await rowsOf(silo, 'source', 'articles'))
  const corrupt = await runCli(['import', 'cli-bad', '--from', file('flipped.gz'), '--domain', 'cli-bad.test'], env)
  t.equal(corrupt.code, 1)
  t.match(corrupt.stderr, /^tenants: The archive is (corrupt|truncated)[^\n]*\n$/)
  await nothingMade(t, silo, 'cli-bad')
  const unknown = await runCli(['export', 'nobody', '--out', file('cli-nobody.gz')], env)
  t.equal(unknown.code, 1)
  t.equal(unknown.stderr, 'tenants: No tenant with slug nobody\n')
  const usage = await runCli(['import', 'cli-none', '--from', file('cli.silo.gz')], env)
  t.not(usage.code, 0, 'import without --domain is refused')
  const passwords = await Promise.all(['source', 'cli-copy'].map(async (slug) => (await silo.catalog.tenantBySlug(slug))?.database.password ?? 'missing'))
  for (const output of [exported, imported, corrupt, unknown, usage]) {
    for (const secret of [...passwords, env.SECRET_KEY as string]) t.notOk(`${output.stdout}${output.stderr}`.includes(secret), 'no password or key in the output')
  }
})
