import knex from 'knex'
import pg from 'pg'
import t from './helpers/tap.js'
import { knexConfig } from '../src/db/knex-config.js'
import { openSilo, type Silo } from '../src/silo.js'
import { listSpares, spareNamePrefix } from '../src/lifecycle/spare-databases.js'
import { runCli } from './helpers/cli.js'
import { testApp } from './helpers/silo.js'

const token = 'admin-token-for-tests-0123456789'
const { silo, app } = await testApp(t, { ADMIN_TOKEN: token, TENANT_SPARES: 2 })
const prefix = silo.config.tenantDbPrefix
const admin = silo.admin

const spares = silo.spares
if (spares === undefined) throw new Error('TENANT_SPARES=2 opens a Silo with spares')

const oidOf = async (database: string): Promise<number | undefined> =>
  (await admin.knex('pg_database').where({ datname: database }).first<{ oid: number } | undefined>('oid'))?.oid
const spareOids = async (): Promise<Map<number, string>> => {
  const oids = new Map<number, string>()
  for (const spare of await listSpares(admin, silo.ownership, prefix)) {
    const oid = await oidOf(spare.name)
    if (oid !== undefined) oids.set(oid, spare.name)
  }
  return oids
}
/** Every spare-named database and role on the server, complete or not. */
const spareNames = async (): Promise<{ databases: string[], roles: string[] }> => ({
  databases: await admin.listDatabases(spareNamePrefix(prefix)),
  roles: await admin.listRoles(spareNamePrefix(prefix))
})
const post = async (slug: string) => await app.inject({
  method: 'POST', url: '/tenants', headers: { host: 'admin.localhost', authorization: `Bearer ${token}` }, payload: { slug, domains: [`${slug}.test`] }
})
/** Owners of the tenant's own objects (tables, sequences, indexes), read as the admin inside its database. */
const ownersIn = async (database: string): Promise<string[]> => {
  const db = knex(knexConfig({ connection: { ...silo.server, database }, pool: { min: 0, max: 1 } }))
  try {
    const { rows } = await db.raw<{ rows: Array<{ owner: string }> }>(`
      select distinct pg_get_userbyid(c.relowner) as owner from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public'`)
    return rows.map((row) => row.owner).sort()
  } finally {
    await db.destroy()
  }
}

t.test('a server keeps TENANT_SPARES complete spares, each a clone of the template owned by a role that cannot log in', async (t) => {
  await spares.settled()
  const ready = await listSpares(admin, silo.ownership, prefix)
  t.equal(ready.length, 2, 'two spares')
  t.same(await spareNames(), { databases: ready.map((spare) => spare.name), roles: ready.map((spare) => spare.name) }, 'nothing half-made beside them')
  const latest = await silo.template?.ready()
  for (const spare of ready) {
    t.equal(spare.version, latest, `${spare.name} is at the template's version`)
    const role = await admin.knex('pg_roles').where({ rolname: spare.name }).first<{ rolcanlogin: boolean }>('rolcanlogin')
    t.equal(role?.rolcanlogin, false, `${spare.name}: its role cannot log in`)
    t.same(await ownersIn(spare.name), [spare.name], `${spare.name}: every object already belongs to its role`)
  }
})

t.test('a create claims a spare: the tenant gets that database under its own names, and the spare is made again', async (t) => {
  await spares.settled()
  const before = await spareOids()
  const res = await post('acme')
  t.equal(res.statusCode, 201, res.body)
  const database = `${prefix}acme`
  const oid = await oidOf(database)
  t.ok(oid !== undefined && before.has(oid), `the tenant's database is a former spare (${before.get(oid ?? 0) ?? 'none'})`)

  const role = await admin.knex('pg_roles').where({ rolname: database }).first<{ rolcanlogin: boolean, rolsuper: boolean, rolcreatedb: boolean }>('rolcanlogin', 'rolsuper', 'rolcreatedb')
  t.same(role, { rolcanlogin: true, rolsuper: false, rolcreatedb: false }, 'its role logs in, with no privilege beyond its database')
  const owner = await admin.knex('pg_database').where({ datname: database }).first<{ owner: string }>(admin.knex.raw('pg_get_userbyid(datdba) as owner'))
  t.equal(owner?.owner, database, 'the database belongs to the tenant role')
  t.same(await ownersIn(database), [database], 'so does every object inside it')
  t.equal(await admin.databaseComment(database), silo.ownership.mark('tenant'), 'the spare mark gave way to the tenant mark')
  t.equal(await admin.roleComment(database), silo.ownership.mark('tenant'), 'on its role too')
  t.equal((await silo.catalog.tenantBySlug('acme'))?.schemaVersion, await silo.template?.ready(), 'the catalog records the schema version the spare held')

  // The tenant works end to end, through its own role and password.
  const created = await app.inject({ method: 'POST', url: '/articles', headers: { host: 'acme.test' }, payload: { title: 'From a spare', body: 'x' } })
  t.equal(created.statusCode, 201, created.body)
  const listed = await app.inject({ url: '/articles', headers: { host: 'acme.test' } })
  t.same(listed.json().items.map((article: { title: string }) => article.title), ['From a spare'])

  await spares.settled()
  t.equal((await listSpares(admin, silo.ownership, prefix)).length, 2, 'the spare was made again')
})

t.test("a tenant made from a spare cannot reach another tenant's database", async (t) => {
  t.equal((await post('globex')).statusCode, 201)
  const acme = await silo.catalog.tenantBySlug('acme')
  if (acme === null) return t.fail('acme exists')
  const client = new pg.Client({ ...silo.server, user: acme.database.user, password: acme.database.password, database: `${prefix}globex` })
  await t.rejects(client.connect(), { code: '42501' }, 'acme\'s role is refused CONNECT on globex\'s database')
  await client.end().catch(() => {})
})

t.test('spares behind the template are dropped, never handed out', async (t) => {
  await spares.settled()
  // A second instance adopts the spares on the server; mark them all as cloned at an older migration.
  const stale = await listSpares(admin, silo.ownership, prefix)
  for (const spare of stale) await admin.setDatabaseComment(spare.name, silo.ownership.mark('spare', '20000101000000_older'))
  const b = await openSilo(silo.config)
  t.teardown(async () => { await b.close() })
  const created = await b.provisioner.create({ slug: 'initech', domains: ['initech.test'] })
  t.equal(created.slug, 'initech')
  const oid = await oidOf(`${prefix}initech`)
  t.notOk(stale.some((spare) => spare.name === `${prefix}initech`), 'sanity')
  const staleOids = new Set<number>()
  for (const spare of stale) {
    const spareOid = await oidOf(spare.name)
    if (spareOid !== undefined) staleOids.add(spareOid)
  }
  t.notOk(oid !== undefined && staleOids.has(oid), 'the tenant did not get a stale spare')
  t.equal(created.schemaVersion, await silo.template?.ready(), 'it is at the newest version')
  await b.spares?.settled()
  const names = new Set((await listSpares(admin, silo.ownership, prefix)).map((spare) => spare.name))
  t.notOk(stale.some((spare) => names.has(spare.name)), 'the stale spares were dropped')
  await b.close()
})

t.test('two instances claiming from the same spares at once: every create succeeds, each with a database of its own', async (t) => {
  await spares.settled()
  const b = await openSilo(silo.config)
  t.teardown(async () => { await b.close() })
  const failures: Error[] = []
  for (const instance of [silo, b]) instance.events.on('spares:failed', ({ error }) => { failures.push(error) })
  await b.spares?.settled()
  const slugs = ['s1', 's2', 's3', 's4', 's5', 's6']
  const results = await Promise.allSettled(slugs.map(async (slug, i) =>
    await (i % 2 === 0 ? silo : b).provisioner.create({ slug, domains: [`${slug}.test`] })))
  t.same(results.map((result) => result.status), slugs.map(() => 'fulfilled'), 'all six created')
  const oids = await Promise.all(slugs.map(async (slug) => await oidOf(`${prefix}${slug}`)))
  t.equal(new Set(oids).size, slugs.length, 'six distinct databases')
  for (const slug of slugs) {
    const res = await app.inject({ url: '/tenant', headers: { host: `${slug}.test` } })
    t.equal(res.json().slug, slug, `${slug} is served`)
  }
  await Promise.all([spares.settled(), b.spares?.settled()])
  t.same(failures.map((error) => error.message), [], 'a spare taken by the other instance is skipped, not reported as a failure')
  await b.close()
})

t.test('closing waits for the spare being made: nothing half-made is left behind', async (t) => {
  const c: Silo = await openSilo({ ...silo.config, tenantSpares: 6 })
  // Claim one so that c is making spares while it closes.
  await c.provisioner.create({ slug: 'closing', domains: ['closing.test'] })
  await c.close()
  await spares.settled()
  const complete = (await listSpares(admin, silo.ownership, prefix)).map((spare) => spare.name)
  t.same(await spareNames(), { databases: complete, roles: complete }, 'every spare on the server is complete')
})

t.test('doctor counts complete spares as Silo\'s own, not as orphans', async (t) => {
  await spares.settled()
  const env = {
    DATABASE_URL: silo.config.databaseUrl ?? '',
    CATALOG_DATABASE: silo.config.catalogDatabase,
    TENANT_DB_PREFIX: prefix,
    SECRET_KEY: silo.config.secretKey ?? '',
    LOG_LEVEL: 'silent'
  }
  const doctor = await runCli(['doctor', '--json'], env)
  t.equal(doctor.code, 0, doctor.stdout + doctor.stderr)
  t.same(JSON.parse(doctor.stdout).report.orphanDatabases, [])
  t.ok((await listSpares(admin, silo.ownership, prefix)).length >= 2, 'and the spares are still there')
})

t.test('with TENANT_SPARES=0 no spare is made', async (t) => {
  const { silo: none } = await testApp(t, { TENANT_SPARES: 0 })
  t.equal(none.spares, undefined)
  await none.provisioner.create({ slug: 'plain', domains: ['plain.test'] })
  t.same(await none.admin.listDatabases(spareNamePrefix(none.config.tenantDbPrefix)), [])
})
