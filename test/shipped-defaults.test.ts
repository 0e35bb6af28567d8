import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from './helpers/tap.js'
import { CredentialCipher } from '../src/catalog/credential-cipher.js'
import { loadConfig } from '../src/config.js'
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js'
import { migrateFleet } from '../src/lifecycle/fleet-migrator.js'
import { openSilo, type Silo } from '../src/silo.js'
import { markText } from '../src/db/object-marks.js'
import { runCli } from './helpers/cli.js'
import { spawnServer } from './helpers/server.js'
import { eventually } from './helpers/wait.js'

// A new user's first steps, with nothing configured: `npm start` (embedded PostgreSQL, catalog
// `silo_catalog`, tenant prefix `silo_`: the catalog's name starts with the prefix), then
// `tenants doctor`. Doctor once called the catalog an orphan here, and `--fix` dropped it.

const dataDir = await mkdtemp(join(tmpdir(), 'silo-defaults-'))

/** Every setting at its shipped default: the caller's test settings are blanked (an empty value counts as unset). */
const env: Record<string, string> = {
  DATABASE_URL: '',
  CATALOG_DATABASE: '',
  CATALOG_DATABASE_URL: '',
  TENANT_DB_PREFIX: '',
  TENANT_SPARES: '',
  SECRET_KEY: '',
  ADMIN_TOKEN: '',
  ADMIN_HOST: '',
  DATA_DIR: dataDir,
  PORT: '0',
  LOG_LEVEL: 'info'
}

/** The embedded server's pid, if one runs on the data directory now. */
async function postmasterPid (): Promise<number | null> {
  const text = await readFile(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').catch(() => null)
  const pid = Number(text?.split('\n')[0])
  if (!Number.isInteger(pid) || pid <= 0) return null
  try {
    process.kill(pid, 0)
    return pid
  } catch {
    return null
  }
}

t.teardown(async () => {
  // Whatever happened above, no PostgreSQL outlives the test.
  const pid = await postmasterPid()
  if (pid !== null) {
    process.kill(pid, 'SIGINT')
    for (let i = 0; i < 200 && await postmasterPid() !== null; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  await rm(dataDir, { recursive: true, force: true })
})

interface Server { port: number, stop: () => Promise<number | null> }

/** Spawns the server as `npm start` runs it with no configuration; resolves once it listens, or with its exit. */
async function startServer (): Promise<Server | { code: number | null, stderr: string }> {
  const server = spawnServer(t, env)
  // A first start runs initdb and seeds the demo tenants; tap's limit of 180 s on the file is the real bound.
  const port = await server.listening(180000).catch(() => null)
  // stop() only waits for an exit that already happened, unless the server hung before listening.
  if (port === null) return { code: (await server.stop()).code, stderr: server.stderr() }
  return { port, stop: async () => (await server.stop()).code }
}

async function get (port: number, host: string, path: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    }).on('error', reject)
  })
}

const articleCount = async (port: number, host: string): Promise<number> => {
  const res = await get(port, host, '/articles')
  return res.status === 200 ? (JSON.parse(res.body) as { items: unknown[] }).items.length : -res.status
}

const secrets = async (): Promise<{ postgresPassword: string, secretKey: string }> =>
  JSON.parse(await readFile(join(dataDir, 'dev-secrets.json'), 'utf8')) as { postgresPassword: string, secretKey: string }

/** The embedded server's admin URL, while it runs. */
async function adminUrl (): Promise<string> {
  const pidFile = await readFile(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')
  const port = Number(pidFile.split('\n')[3])
  return `postgres://postgres:${encodeURIComponent((await secrets()).postgresPassword)}@127.0.0.1:${port}/postgres`
}

t.test('with the shipped defaults, doctor finds nothing to drop, and --fix --yes drops nothing', async (t) => {
  const server = await startServer()
  if (!('port' in server)) return t.fail(`the server did not start: ${server.stderr}`)
  t.equal(await articleCount(server.port, 'acme.localhost'), 5, 'the demo tenant acme serves its articles')
  t.equal(await articleCount(server.port, 'globex.localhost'), 5, 'so does globex')

  const doctor = await runCli(['doctor', '--json'], env)
  t.equal(doctor.code, 0, doctor.stdout + doctor.stderr)
  const { report, healthy } = JSON.parse(doctor.stdout)
  t.equal(healthy, true)
  t.equal(report.catalog.database, 'silo_catalog')
  t.same([report.orphanDatabases, report.orphanRoles], [[], []], 'no orphan: not the catalog, not the template, not the spares')
  t.notOk(report.notOurs.some((entry: { name: string }) => entry.name === 'silo_catalog'), 'the catalog is not even a candidate')
  t.same(report.exposed.filter((entry: { hardenable: boolean }) => entry.hardenable), [], "the embedded server's own databases are closed to tenant roles")

  const fixed = await runCli(['doctor', '--fix', '--yes', '--json'], env)
  t.equal(fixed.code, 0, fixed.stderr)
  t.same(JSON.parse(fixed.stdout).repaired.dropped, { databases: [], roles: [], tenants: [] }, 'nothing dropped')
  t.equal(await articleCount(server.port, 'acme.localhost'), 5, 'acme still serves')
  t.equal(await articleCount(server.port, 'globex.localhost'), 5, 'globex still serves')

  // The server's own databases are never candidates, even carrying this catalog's tenant mark (a
  // private server: the marks are harmless here, and removed again).
  const server0 = new pg.Client({ connectionString: await adminUrl() })
  await server0.connect()
  const ownMark = markText({ id: report.catalog.id, database: 'silo_catalog' }, 'tenant')
  const own = ['postgres', 'template0', 'template1']
  for (const name of own) await server0.query(`comment on database ${name} is '${ownMark}'`)
  const marked = await runCli(['doctor', '--fix', '--yes', '--json'], env)
  for (const name of own) await server0.query(`comment on database ${name} is null`)
  const present = (await server0.query<{ datname: string }>('select datname from pg_database where datname = any($1)', [own])).rows.map((row) => row.datname).sort()
  await server0.end()
  t.equal(marked.code, 0, marked.stderr)
  const afterMarking = JSON.parse(marked.stdout) as { report: { orphanDatabases: string[] }, repaired: { dropped: { databases: string[] } } }
  t.same(afterMarking.report.orphanDatabases, [], 'postgres, template0 and template1 carrying the mark are no orphans')
  t.same(afterMarking.repaired.dropped.databases, [], 'and --fix --yes drops none of them')
  t.same(present, own, "the server's own databases are all still there")

  // A tenant role reaches its own database and nothing else: the embedded server is Silo's, hardened at start.
  const catalog = new pg.Client({ connectionString: (await adminUrl()).replace(/\/postgres$/, '/silo_catalog') })
  await catalog.connect()
  const sealed = (await catalog.query<{ db_password: string }>("select db_password from tenants where slug = 'acme'")).rows[0]?.db_password ?? ''
  await catalog.end()
  const password = new CredentialCipher({ current: (await secrets()).secretKey }).decrypt(sealed)
  const asAcme = async (database: string): Promise<void> => {
    // Host and port from the admin URL; a connection string would override the rest.
    const { hostname, port } = new URL(await adminUrl())
    const client = new pg.Client({ host: hostname, port: Number(port), user: 'silo_acme', password, database })
    await client.connect()
    await client.end()
  }
  await asAcme('silo_acme')
  t.pass("acme's role connects to its own database")
  await t.rejects(asAcme('silo_globex'), { code: '42501' }, "and not to globex's")
  await t.rejects(asAcme('postgres'), { code: '42501' }, "and not to the server's postgres database")
  await t.rejects(asAcme('template1'), { code: '42501' }, 'nor to template1')

  t.equal(await server.stop(), 0, 'SIGTERM: a clean exit')
})

t.test("clearing the knex lock a dead migrator left rewrites only the database being migrated: never the catalog, another catalog's tenant, or the server's own databases", async (t) => {
  // src/lifecycle/migration-lock.ts clears knex_migrations_lock when no live migrator can hold it.
  // Every database below carries that table with its lock set; a fleet migration of this catalog
  // (the shipped names: silo_catalog, whose name starts with the prefix silo_) may clear only its
  // own tenants' locks.
  const { postgresPassword, secretKey } = await secrets()
  const embedded = await startEmbeddedPostgres({ dataDir, password: postgresPassword })
  t.teardown(async () => { await embedded.stop() })
  const open = async (catalogDatabase?: string): Promise<Silo> => await openSilo(loadConfig({
    DATABASE_URL: embedded.url, SECRET_KEY: secretKey, LOG_LEVEL: 'silent', TENANT_SPARES: 0, ...(catalogDatabase === undefined ? {} : { CATALOG_DATABASE: catalogDatabase })
  }, { env: false, dotenv: false }), { listen: false, spares: false })
  const inDatabase = async <T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: embedded.url.replace(/\/postgres$/, `/${database}`) })
    await client.connect()
    try {
      return await fn(client)
    } finally {
      await client.end()
    }
  }
  const lockOf = async (database: string): Promise<number[]> =>
    await inDatabase(database, async (client) => (await client.query<{ is_locked: number }>('select is_locked from knex_migrations_lock')).rows.map((row) => row.is_locked))
  const setLock = async (database: string, locked: number): Promise<void> => {
    await inDatabase(database, async (client) => { await client.query('update knex_migrations_lock set is_locked = $1', [locked]) })
  }

  // A second catalog on the same server with the same prefix, and a tenant of its own: silo_initech.
  const other = await open('silo_other')
  try {
    await other.provisioner.create({ slug: 'initech', domains: ['initech.localhost'] })
  } finally {
    await other.close()
  }
  const silo = await open()
  // template0 takes no connection: nothing can write there.
  const serverOwn = ['postgres', 'template1']
  try {
    t.same([silo.config.catalogDatabase, silo.config.tenantDbPrefix], ['silo_catalog', 'silo_'], 'the shipped names')
    for (const database of serverOwn) {
      await inDatabase(database, async (client) => {
        await client.query('create table knex_migrations_lock (index serial primary key, is_locked integer not null)')
        await client.query('insert into knex_migrations_lock (is_locked) values (1)')
      })
    }
    for (const database of ['silo_catalog', 'silo_initech', 'silo_acme', 'silo_globex']) await setLock(database, 1)
    // The sessions that set the locks may linger a moment while their backends exit; one there would rightly keep a lock.
    const quiet = await eventually(async () => await inDatabase('postgres', async (client) => (await client.query(
      "select 1 from pg_stat_activity where datname in ('silo_acme', 'silo_globex') and usesysid is not null and coalesce(application_name, '') not like 'silo:%'")).rowCount === 0), 10000, 20)
    t.ok(quiet, 'no session left on the tenants')

    const slugs = (await silo.catalog.listTenants()).map((tenant) => tenant.slug).sort()
    t.same(slugs, ['acme', 'globex'], "this catalog's tenants only")
    const results = await migrateFleet(silo.catalog, silo.migrator, slugs, { direction: 'latest', concurrency: 2 })
    t.same(results.map((result) => result.status).sort(), ['up-to-date', 'up-to-date'], 'both migrated, none refused on a lock')
    t.same([await lockOf('silo_acme'), await lockOf('silo_globex')], [[0], [0]], "the tenants' own abandoned locks are cleared")
    t.same(await lockOf('silo_catalog'), [1], "the catalog's is left as it was")
    t.same(await lockOf('silo_initech'), [1], "so is the other catalog's tenant's, on the same prefix")
    for (const database of serverOwn) t.same(await lockOf(database), [1], `and ${database}'s`)
  } finally {
    await silo.close()
    for (const database of serverOwn) await inDatabase(database, async (client) => { await client.query('drop table if exists knex_migrations_lock') })
    await setLock('silo_catalog', 0)
    const again = await open('silo_other')
    await again.provisioner.drop('initech')
    await again.close()
    await inDatabase('postgres', async (client) => { await client.query('drop database silo_other with (force)') })
  }
})

t.test('a start that finds the catalog gone but its tenants still there refuses, and drops nothing', async (t) => {
  // The state doctor --fix used to leave: silo_catalog dropped, the tenant databases still there.
  const { postgresPassword } = await secrets()
  const embedded = await startEmbeddedPostgres({ dataDir, password: postgresPassword })
  const admin = new pg.Client({ connectionString: embedded.url })
  await admin.connect()
  await admin.query('drop database silo_catalog with (force)')
  await admin.end()
  await embedded.stop()

  const refused = await startServer()
  if ('port' in refused) {
    await refused.stop()
    return t.fail('the server started over a lost catalog')
  }
  t.equal(refused.code, 1, 'the server exits 1')
  t.match(refused.stderr, /The catalog database silo_catalog does not exist, but 2 tenant databases on the server carry its mark \(silo_acme, silo_globex\)/)
  t.match(refused.stderr, /Restore it/)
  const list = await runCli(['list'], env)
  t.equal(list.code, 1, 'so does every CLI command')
  t.match(list.stderr, /^tenants: The catalog database silo_catalog does not exist/)

  const after = await startEmbeddedPostgres({ dataDir, password: postgresPassword })
  const check = new pg.Client({ connectionString: after.url })
  await check.connect()
  const { rows } = await check.query<{ datname: string }>("select datname from pg_database where datname in ('silo_acme', 'silo_globex', 'silo_catalog') order by datname")
  await check.end()
  await after.stop()
  t.same(rows.map((row) => row.datname), ['silo_acme', 'silo_globex'], 'the tenant databases are whole, and no empty catalog was made over them')
})
