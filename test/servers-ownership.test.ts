// What removing a server and doctor over several servers drop: only this catalog's own. With the
// shipped defaults (catalog `silo_catalog`, prefix `silo_`: the catalog's name starts with the
// prefix), beside a second catalog with the same prefix on the same servers, and PostgreSQL's own
// databases. Two embedded servers of this file's own: `home` (DATABASE_URL, both catalogs) and
// `other` (registered by both), so the shipped names touch nobody's real deployment.
import t from './helpers/tap.js'
import pg from 'pg'
import { loadConfig } from '../src/config.js'
import { diagnose, planRepair, repair } from '../src/lifecycle/doctor.js'
import { listSpares, spareNamePrefix } from '../src/lifecycle/spare-databases.js'
import { templateDatabaseName } from '../src/lifecycle/tenant-template.js'
import { openSilo, type Silo } from '../src/silo.js'
import { startEmbeddedServer } from './helpers/embedded.js'
import { serverObjects } from './helpers/servers.js'
import { TEST_SECRET_KEY } from './helpers/silo.js'

const home = await startEmbeddedServer()
const other = await startEmbeddedServer()
const opened: Silo[] = []
// One teardown, in order: the instances, then the servers under them.
t.teardown(async () => {
  for (const silo of opened) await silo.close()
  await Promise.all([home.destroy(), other.destroy()])
})

/** The shipped defaults but for the server, the key and one spare a server (to have spares to keep or drop). */
const configFor = (catalog?: string) => loadConfig({
  DATABASE_URL: home.url, SECRET_KEY: TEST_SECRET_KEY, LOG_LEVEL: 'silent', TENANT_SPARES: 1, ...(catalog === undefined ? {} : { CATALOG_DATABASE: catalog })
}, { env: false, dotenv: false })
const configA = configFor()
const configB = configFor('silo_other')

const a = await openSilo(configA)
opened.push(a)
const b = await openSilo(configB)
opened.push(b)

const onOther = async (sql: string): Promise<void> => {
  const client = new pg.Client({ connectionString: other.url })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}
const sparesOf = async (silo: Silo): Promise<void> => { await (await silo.servers.byName('other')).spares?.settled() }

t.test('set-up: both catalogs place a tenant and keep a template and a spare on the other server', async (t) => {
  t.equal(configA.catalogDatabase, 'silo_catalog', 'the shipped catalog')
  t.equal(configA.tenantDbPrefix, 'silo_', 'the shipped prefix')
  t.equal(configB.tenantDbPrefix, 'silo_', 'the second catalog shares the prefix')
  await a.serverRegistry.add({ name: 'other', url: other.url })
  await b.serverRegistry.add({ name: 'other', url: other.url })
  await a.provisioner.create({ slug: 'alpha', domains: ['alpha.test'], server: 'other' })
  await b.provisioner.create({ slug: 'bravo', domains: ['bravo.test'], server: 'other' })
  // Every spare made, here and on the home server, so nothing changes under the comparisons below.
  await Promise.all([sparesOf(a), sparesOf(b), a.spares?.settled(), b.spares?.settled()])
  // Somebody else's database with the prefix, and no mark.
  await onOther('create database silo_stranger')
  const { databases } = await serverObjects(other.url)
  t.ok(databases.includes(templateDatabaseName('silo_', a.ownership.identity)), "A's template is there")
  t.ok(databases.includes(templateDatabaseName('silo_', b.ownership.identity)), "B's template is there")
  t.equal(databases.filter((name) => name.startsWith(spareNamePrefix('silo_'))).length, 2, 'a spare of each')
})

t.test("doctor --fix --yes over both servers drops nothing that is not its own, nor the servers' own databases", async (t) => {
  await a.provisioner.drop('alpha')
  // A database A attached (named with the prefix, no mark: what doctor judges), owned by a role of its own.
  await onOther('create role silo_legacy_owner login password \'legacy-pw-1\'')
  await onOther('create database silo_legacy owner silo_legacy_owner')
  const legacyUrl = new URL(other.url)
  legacyUrl.username = 'silo_legacy_owner'
  legacyUrl.password = 'legacy-pw-1'
  legacyUrl.pathname = '/silo_legacy'
  t.match(await a.attacher.attach({ slug: 'legacy', url: legacyUrl.toString(), domains: ['legacy.test'] }), { attached: true, server: 'other' })
  await onOther('create database silo_orphan_of_a')
  await onOther(`comment on database silo_orphan_of_a is '${a.ownership.mark('tenant')}'`)
  const before = { home: await serverObjects(home.url), other: await serverObjects(other.url) }
  const deps = { catalog: a.catalog, servers: a.servers, provisioner: a.provisioner, prefix: 'silo_' }
  const report = await diagnose(deps)
  t.same(report.orphanDatabases, ['silo_orphan_of_a@other'], 'its own orphan on the other server is the only one')
  t.same(report.orphanRoles, [])
  const fixed = await repair(deps, planRepair(report), { confirmed: true })
  t.same(fixed.dropped, { databases: ['silo_orphan_of_a@other'], roles: [], tenants: [] })
  const after = { home: await serverObjects(home.url), other: await serverObjects(other.url) }
  t.same(after.home, before.home, 'nothing on the home server changed: both catalogs, postgres, template0, template1')
  t.same(after.other.databases, before.other.databases.filter((name) => name !== 'silo_orphan_of_a'), 'on the other server only that orphan went')
  t.same(after.other.roles, before.other.roles)
  t.match(await a.catalog.tenantBySlug('legacy'), { attached: true, status: 'active' }, 'the attached tenant is kept')
  const client = new pg.Client({ connectionString: other.url })
  await client.connect()
  const { rows } = await client.query("select shobj_description(d.oid, 'pg_database') as database, shobj_description(r.oid, 'pg_authid') as role from pg_database d, pg_roles r where d.datname = 'silo_legacy' and r.rolname = 'silo_legacy_owner'")
  await client.end()
  t.same(rows, [{ database: null, role: null }], 'its database is there, and neither it nor its role was marked')
})

t.test("attach and drop --drop-database never touch the other catalog's objects, either catalog, or the server's own databases", async (t) => {
  const onHome = async (sql: string): Promise<void> => {
    const client = new pg.Client({ connectionString: home.url })
    await client.connect()
    try {
      await client.query(sql)
    } finally {
      await client.end()
    }
  }
  const before = { home: await serverObjects(home.url), other: await serverObjects(other.url) }
  const urlAs = (server: string, role: string, password: string, database: string): string => {
    const url = new URL(server)
    url.username = role
    url.password = password
    url.pathname = `/${database}`
    return url.toString()
  }
  // A plain role that may connect to the server's own database and to both catalogs (hardened: granted by hand).
  await onHome('create role silo_plain login password \'plain-pw-1\'')
  await onHome('grant connect on database postgres to silo_plain')
  await onHome('grant connect on database silo_other to silo_plain')
  await onHome('grant connect on database silo_catalog to silo_plain')
  const bravo = await b.catalog.tenantBySlug('bravo')
  const refusals: Array<[string, RegExp]> = [
    [urlAs(other.url, bravo?.database.user ?? '', bravo?.database.password ?? '', bravo?.database.name ?? ''), /made by Silo \(marked for catalog silo_other/],
    [urlAs(home.url, 'silo_plain', 'plain-pw-1', 'silo_other'), /is a Silo catalog/],
    [urlAs(home.url, 'silo_plain', 'plain-pw-1', 'silo_catalog'), /is a Silo catalog/]
  ]
  for (const [url, message] of refusals) {
    const error = await a.attacher.attach({ slug: 'taken', url, domains: ['taken.test'] }).then(() => undefined, (error: unknown) => error as { code?: string })
    t.match(error, { message }, `refused: ${message.source}`)
  }
  t.equal(await a.catalog.tenantBySlug('taken'), null, 'nothing recorded')

  // The server's own `postgres` may be attached (a plain role's choice), and is never dropped.
  await a.attacher.attach({ slug: 'pg-own', url: urlAs(home.url, 'silo_plain', 'plain-pw-1', 'postgres'), domains: ['pg-own.test'], migrate: false })
  const drop = await a.provisioner.drop('pg-own', { dropDatabase: true }).then(() => undefined, (error: unknown) => error as { code?: string })
  t.match(drop, { code: 'DATABASE_TAKEN', message: /PostgreSQL's own/ }, '--drop-database refuses postgres')
  t.match(await a.catalog.tenantBySlug('pg-own'), { attached: true, status: 'active' }, 'and the tenant stays attached as it was')
  t.same(await a.provisioner.drop('pg-own'), { detached: true }, 'a plain drop only detaches it')

  await onHome('revoke connect on database postgres from silo_plain')
  await onHome('revoke connect on database silo_other from silo_plain')
  await onHome('revoke connect on database silo_catalog from silo_plain')
  await onHome('drop role silo_plain')
  const after = { home: await serverObjects(home.url), other: await serverObjects(other.url) }
  t.same(after, before, 'every database and role on both servers is as it was: both catalogs, B\'s tenant, postgres, template0, template1')
  t.equal(await b.withTenant('bravo', async (db) => Number((await db.raw<{ rows: Array<{ one: number }> }>('select 1 as one')).rows[0]?.one)), 1, "B's tenant still serves")
})

t.test("a move never touches the other catalog's database of the tenant's name, nor the servers' own: refused up front, and doctor's repair of an interrupted move leaves it", async (t) => {
  // Both catalogs have a tenant `twin`, so both name its database and role silo_twin: B's on the
  // other server, A's on the home server.
  await b.provisioner.create({ slug: 'twin', domains: ['twin-b.test'], server: 'other' })
  await a.provisioner.create({ slug: 'twin', domains: ['twin-a.test'], server: 'default' })
  await Promise.all([sparesOf(a), sparesOf(b), a.spares?.settled(), b.spares?.settled()])
  const before = { home: await serverObjects(home.url), other: await serverObjects(other.url) }
  t.ok(before.other.databases.includes('silo_twin') && before.home.databases.includes('silo_twin'), 'silo_twin on both servers, one of each catalog')
  await t.rejects(a.mover.move('twin', { to: 'other' }), { code: 'MOVE_REFUSED', message: /holds a database or role named silo_twin/ }, "a move onto B's silo_twin is refused")
  // What a mover killed before its copy was made leaves: a move record nobody works on.
  const tenant = await a.catalog.tenantBySlug('twin')
  await a.catalog.moves.start({ tenantId: tenant?.id ?? '', slug: 'twin', from: 'default', to: 'other', keepSource: false })
  const deps = { catalog: a.catalog, servers: a.servers, provisioner: a.provisioner, prefix: configA.tenantDbPrefix }
  const report = await diagnose(deps)
  t.match(report.interruptedMoves, [{ slug: 'twin', to: 'other' }])
  const repaired = await repair(deps, planRepair(report), { confirmed: true })
  t.same(repaired.moves, ['twin'], "A's doctor repairs its interrupted move")
  const after = { home: await serverObjects(home.url), other: await serverObjects(other.url) }
  t.same(after, before, "and every database and role on both servers is as it was: B's silo_twin, A's own, postgres, template0, template1")
  for (const server of [after.home, after.other]) t.ok(['postgres', 'template0', 'template1'].every((name) => server.databases.includes(name)))
  t.match((await a.catalog.moves.ofTenant('twin'))[0], { phase: 'failed' })
  t.equal((await b.catalog.tenantBySlug('twin'))?.status, 'active', "B's twin is still served")
  await Promise.all([a.provisioner.drop('twin'), b.provisioner.drop('twin')])
  await Promise.all([sparesOf(a), sparesOf(b), a.spares?.settled(), b.spares?.settled()])
})

t.test("removing the other server drops this catalog's template and spare there, and nothing else", async (t) => {
  const before = { home: await serverObjects(home.url), other: await serverObjects(other.url) }
  // The attached tenant's database goes on request (never its role), so the server holds no tenant of A's.
  await a.provisioner.drop('legacy', { dropDatabase: true })
  before.other.databases = before.other.databases.filter((name) => name !== 'silo_legacy')
  const parts = await a.servers.byName('other')
  const ours = [templateDatabaseName('silo_', a.ownership.identity), ...(await listSpares(parts.admin, parts.ownership, 'silo_')).map((spare) => spare.name)].sort()
  t.equal(ours.length, 2, "A's template and its spare")
  t.same(await a.serverRegistry.remove('other'), { cleaned: true })
  const after = { home: await serverObjects(home.url), other: await serverObjects(other.url) }
  t.same(after.home, before.home, 'nothing on the home server changed')
  t.same(before.other.databases.filter((name) => !after.other.databases.includes(name)).sort(), ours, "A's template and spare went, nothing more")
  t.same(before.other.roles.filter((name) => !after.other.roles.includes(name)).sort(), ours, 'and their roles')
  for (const kept of ['postgres', 'template0', 'template1', 'silo_stranger', 'silo_bravo', templateDatabaseName('silo_', b.ownership.identity)]) {
    t.ok(after.other.databases.includes(kept), `${kept} is still there`)
  }
  t.equal(after.other.databases.filter((name) => name.startsWith(spareNamePrefix('silo_'))).length, 1, "B's spare is still there")
  t.ok(after.other.roles.includes('silo_bravo'), "B's tenant role is still there")
  t.equal(await b.withTenant('bravo', async (db) => Number((await db.raw<{ rows: Array<{ one: number }> }>('select 1 as one')).rows[0]?.one)), 1, "and B's tenant still serves")
  await b.provisioner.drop('bravo')
  t.same(await b.serverRegistry.remove('other'), { cleaned: true })
  const last = await serverObjects(other.url)
  t.same(last.databases, ['postgres', 'silo_stranger', 'template0', 'template1'], 'once both catalogs removed it, what is left is the server\'s own and the stranger\'s')
})
