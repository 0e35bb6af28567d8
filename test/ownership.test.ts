import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import t from './helpers/tap.js'
import { buildApp } from '../src/app.js'
import { openSilo, type Silo } from '../src/silo.js'
import { Provisioner } from '../src/lifecycle/provisioner.js'
import { listSpares } from '../src/lifecycle/spare-databases.js'
import { templateDatabaseName } from '../src/lifecycle/tenant-template.js'
import { runCli } from './helpers/cli.js'
import { dropTestDatabases, testConfig, testEnv } from './helpers/silo.js'

// Two deployments on one server with one tenant prefix, as two teams sharing a PostgreSQL
// would have them, and both catalogs named with that prefix, as the shipped defaults are
// (`silo_catalog`, prefix `silo_`).
const prefix = `so${randomBytes(4).toString('hex')}_`
const envA = testEnv({ TENANT_DB_PREFIX: prefix, CATALOG_DATABASE: `${prefix}catalog`, TENANT_SPARES: 2 })
const envB = testEnv({ TENANT_DB_PREFIX: prefix, CATALOG_DATABASE: `${prefix}catalog_b`, TENANT_SPARES: 2 })
const configA = testConfig(envA)
const configB = testConfig(envB)

const opened: Array<{ silo: Silo, app: FastifyInstance }> = []
t.teardown(async () => {
  for (const { app } of opened) await app.close()
  for (const { silo } of opened) await silo.close()
  await dropTestDatabases(configA)
  await dropTestDatabases(configB)
})
const open = async (config: typeof configA): Promise<{ silo: Silo, app: FastifyInstance }> => {
  const silo = await openSilo(config)
  const app = await buildApp(silo, { config })
  opened.push({ silo, app })
  return { silo, app }
}
const a = await open(configA)
const b = await open(configB)
const admin = a.silo.admin

const doctor = async (env: Record<string, string | number>, ...args: string[]) => {
  const result = await runCli(['doctor', ...args], env)
  return { ...result, json: args.includes('--json') ? JSON.parse(result.stdout) : undefined }
}
const articles = async (app: FastifyInstance, host: string): Promise<number> => {
  const res = await app.inject({ url: '/articles', headers: { host } })
  return res.statusCode === 200 ? res.json().items.length : -res.statusCode
}
const entryFor = (entries: Array<{ type: string, name: string }>, name: string): unknown => entries.find((entry) => entry.type === 'database' && entry.name === name)
const exists = async (name: string) => ({ database: await admin.databaseExists(name), role: await admin.roleExists(name) })

await a.silo.provisioner.create({ slug: 'acme', domains: ['acme.test'], seed: true })
await a.silo.provisioner.create({ slug: 'initech', domains: ['initech.test'], seed: true })
await b.silo.provisioner.create({ slug: 'globex', domains: ['globex.test'], seed: true })
await Promise.all([a.silo.spares?.settled(), b.silo.spares?.settled()])

t.test('each catalog marks what it makes, and keeps a template and spares of its own', async (t) => {
  const templateA = templateDatabaseName(prefix, a.silo.ownership.identity)
  const templateB = templateDatabaseName(prefix, b.silo.ownership.identity)
  t.not(templateA, templateB, 'two templates, one per catalog')
  t.ok((await exists(templateA)).database && (await exists(templateB)).database)
  const sparesA = (await listSpares(admin, a.silo.ownership, prefix)).map((spare) => spare.name)
  const sparesB = (await listSpares(admin, b.silo.ownership, prefix)).map((spare) => spare.name)
  t.equal(sparesA.length, 2)
  t.equal(sparesB.length, 2)
  t.same(sparesA.filter((name) => sparesB.includes(name)), [], 'neither lists the other\'s spares')
  t.equal(await admin.databaseComment(`${prefix}acme`), a.silo.ownership.mark('tenant'))
  t.equal(await admin.roleComment(`${prefix}acme`), a.silo.ownership.mark('tenant'))
  t.equal(await admin.databaseComment(`${prefix}globex`), b.silo.ownership.mark('tenant'))
  t.match(a.silo.ownership.mark('tenant'), new RegExp(`^silo:${a.silo.ownership.identity.id}:${prefix}catalog:tenant$`))
})

t.test('doctor --fix --yes of each catalog drops its own orphans only: the other deployment and itself stay whole', async (t) => {
  // A create of each deployment whose catalog row was lost: marked, unknown.
  for (const [silo, name] of [[a.silo, `${prefix}ghost`], [b.silo, `${prefix}phantom`]] as const) {
    await silo.admin.ensureRole(name, 'pw-of-a-lost-create', silo.ownership.mark('tenant'))
    await silo.admin.ensureDatabase(name, name, { mark: silo.ownership.mark('tenant') })
  }
  // Somebody else's database and role, named with the prefix.
  await admin.knex.raw('create role ?? nologin', [`${prefix}stranger`])
  await admin.knex.raw('create database ??', [`${prefix}stranger`])

  const sickA = await doctor(envA, '--json')
  t.equal(sickA.code, 1)
  t.same(sickA.json.report.orphanDatabases, [`${prefix}ghost`], "A's only orphan database is its own lost one")
  t.same(sickA.json.report.orphanRoles, [`${prefix}ghost`])
  const notOursA = sickA.json.report.notOurs.map((entry: { type: string, name: string }) => `${entry.type} ${entry.name}`)
  for (const name of [`${prefix}globex`, `${prefix}phantom`, `${prefix}stranger`, templateDatabaseName(prefix, b.silo.ownership.identity), `${prefix}catalog_b`]) {
    t.ok(notOursA.includes(`database ${name}`), `A lists ${name} as not ours`)
  }
  const { orphanDatabases, notOurs } = sickA.json.report as { orphanDatabases: string[], notOurs: Array<{ name: string }> }
  t.notOk([...orphanDatabases, ...notOurs.map((entry) => entry.name)].includes(`${prefix}catalog`), "A's own catalog is never a candidate, though it has the prefix")
  const sickB = await doctor(envB, '--json')
  t.same(sickB.json.report.orphanDatabases, [`${prefix}phantom`], "B's only orphan database is its own lost one")
  t.notOk(JSON.stringify(sickB.json.report.orphanDatabases).includes(`${prefix}catalog`), 'nor is B\'s')

  const shown = await doctor(envA, '--fix')
  t.equal(shown.code, 1, 'without --yes: exit 1')
  t.match(shown.stdout, new RegExp(`will drop, with --yes: database ${prefix}ghost, role ${prefix}ghost`))
  t.same(await exists(`${prefix}ghost`), { database: true, role: true }, 'and nothing dropped')
  const shownJson = await doctor(envA, '--fix', '--json')
  t.equal(shownJson.code, 1, 'nor with --json')
  t.same(shownJson.json.plan.drop, { databases: [`${prefix}ghost`], roles: [`${prefix}ghost`], tenants: [] }, '--fix --json gives the plan the text showed')
  t.same(shownJson.json.repaired.unconfirmed, shownJson.json.plan.drop, 'as what waits for --yes')
  t.same(shownJson.json.repaired.dropped, { databases: [], roles: [], tenants: [] }, 'having dropped nothing')
  t.same(await exists(`${prefix}ghost`), { database: true, role: true })

  const fixedA = await doctor(envA, '--fix', '--yes', '--json')
  t.equal(fixedA.code, 0, fixedA.stderr)
  t.same(fixedA.json.repaired.dropped, { databases: [`${prefix}ghost`], roles: [`${prefix}ghost`], tenants: [] })
  const fixedB = await doctor(envB, '--fix', '--yes', '--json')
  t.equal(fixedB.code, 0, fixedB.stderr)
  t.same(fixedB.json.repaired.dropped, { databases: [`${prefix}phantom`], roles: [`${prefix}phantom`], tenants: [] })

  for (const name of [`${prefix}catalog`, `${prefix}catalog_b`, `${prefix}acme`, `${prefix}initech`, `${prefix}globex`, `${prefix}stranger`,
    templateDatabaseName(prefix, a.silo.ownership.identity), templateDatabaseName(prefix, b.silo.ownership.identity)]) {
    t.ok(await admin.databaseExists(name), `${name} is still there`)
  }
  t.ok(await admin.roleExists(`${prefix}stranger`))
  t.equal((await listSpares(admin, a.silo.ownership, prefix)).length, 2, "A's spares are whole")
  t.equal((await listSpares(admin, b.silo.ownership, prefix)).length, 2, "B's spares are whole")
  t.equal(await articles(a.app, 'acme.test'), 5, 'acme serves its articles')
  t.equal(await articles(a.app, 'initech.test'), 5, 'initech serves its articles')
  t.equal(await articles(b.app, 'globex.test'), 5, 'globex serves its articles')
  t.equal((await doctor(envA, '--json')).json.healthy, true)
  t.equal((await doctor(envB, '--json')).json.healthy, true)
})

t.test("a catalog never removes another catalog's database through a tenant entry of its own", async (t) => {
  await a.silo.provisioner.create({ slug: 'contested', domains: ['contested.test'], seed: true })
  await t.rejects(b.silo.provisioner.create({ slug: 'contested', domains: ['contested-b.test'] }), { code: 'SLUG_TAKEN', statusCode: 409 },
    'B cannot create a tenant whose names A holds')
  // What two creates of one slug racing on a shared server can leave in B: an entry of its own
  // naming objects A made and marked.
  await b.silo.catalog.insertTenant({
    slug: 'contested', name: 'contested', databaseName: `${prefix}contested`, databaseUser: `${prefix}contested`, password: 'pw-of-b', domains: ['contested-b.test']
  })
  const fixed = await doctor(envB, '--fix', '--json')
  t.equal(fixed.code, 0, fixed.stderr)
  t.same(fixed.json.repaired.dropped.tenants, ['contested'], "B's half-made entry is removed")
  t.equal(await b.silo.catalog.tenantBySlug('contested'), null)
  t.same(await exists(`${prefix}contested`), { database: true, role: true }, "A's database and role are left to A")
  t.equal(await articles(a.app, 'contested.test'), 5, 'and A still serves it')
})

t.test('tenants made before marks are marked once at open, or by doctor --fix; never dropped meanwhile', async (t) => {
  await a.silo.provisioner.create({ slug: 'legacy', domains: ['legacy.test'], seed: true })
  const unmark = async (): Promise<void> => {
    await admin.knex.raw('comment on database ?? is null; comment on role ?? is null', [`${prefix}legacy`, `${prefix}legacy`])
  }
  await unmark()
  const before = await doctor(envA, '--json')
  t.equal(before.code, 1)
  t.same(before.json.report.unmarked, [{ type: 'database', name: `${prefix}legacy` }, { type: 'role', name: `${prefix}legacy` }])
  t.same(before.json.report.orphanDatabases, [], 'an unmarked tenant object is not an orphan')
  t.same(before.json.plan.drop, { databases: [], roles: [], tenants: [] }, 'and nothing of it is planned for dropping')

  const fixed = await doctor(envA, '--fix', '--json')
  t.equal(fixed.code, 0, fixed.stderr)
  t.same(fixed.json.repaired.marked, [{ type: 'role', name: `${prefix}legacy` }, { type: 'database', name: `${prefix}legacy` }])
  t.equal(await admin.databaseComment(`${prefix}legacy`), a.silo.ownership.mark('tenant'))

  // A catalog from before marks: its objects unmarked and the catalog never marked them.
  await unmark()
  await a.silo.catalog.knex('catalog_identity').update({ objects_marked_at: null })
  const reopened = await openSilo({ ...configA, tenantSpares: 0 })
  await reopened.close()
  t.equal(await admin.databaseComment(`${prefix}legacy`), a.silo.ownership.mark('tenant'), 'the next open marks the database')
  t.equal(await admin.roleComment(`${prefix}legacy`), a.silo.ownership.mark('tenant'), 'and the role')
  t.equal((await doctor(envA, '--json')).json.healthy, true)
  t.equal(await articles(a.app, 'legacy.test'), 5)
})

t.test("the admin connection's database is never a candidate, whatever its name and mark", async (t) => {
  const adminDatabase = `${prefix}admin`
  await admin.ensurePrivateDatabase(adminDatabase, a.silo.ownership.mark('tenant'))
  const url = new URL(envA.DATABASE_URL as string)
  url.pathname = `/${adminDatabase}`
  const report = await doctor({ ...envA, DATABASE_URL: url.toString() }, '--json')
  t.equal(report.code, 0, report.stdout)
  t.same(report.json.report.orphanDatabases, [], `${adminDatabase} carries A's mark but is the admin URL's database`)
  const fixed = await doctor({ ...envA, DATABASE_URL: url.toString() }, '--fix', '--yes')
  t.equal(fixed.code, 0)
  t.ok(await admin.databaseExists(adminDatabase), 'and is never dropped')
})

t.test("a tenant that rewrites its database's comment makes it neither another catalog's nor nobody's: its owner's mark decides", async (t) => {
  await a.silo.provisioner.create({ slug: 'rewriter', domains: ['rewriter.test'], seed: true })
  const name = `${prefix}rewriter`
  for (const comment of [b.silo.ownership.mark('tenant'), 'nothing-to-see']) {
    // As the tenant's own role, which owns its database and so may comment on it.
    await a.silo.withTenant('rewriter', async (db) => { await db.raw(`comment on database ?? is '${comment}'`, [name]) })
    t.equal(await admin.databaseComment(name), comment, `the tenant set its database's comment to ${comment}`)
    const byA = (await doctor(envA, '--json')).json
    t.notOk(JSON.stringify(byA.report).includes(name), `A lists it nowhere: it knows it as its own (${comment})`)
    const byB = (await doctor(envB, '--json')).json
    t.same(byB.report.orphanDatabases, [], 'B does not take it for an orphan of its own')
    t.match(entryFor(byB.report.notOurs, name), { type: 'database', reason: /another catalog/ }, "B lists it as another catalog's")
  }
  t.equal(await articles(a.app, 'rewriter.test'), 5, 'it still serves')
  await a.silo.provisioner.drop('rewriter')
  t.same(await exists(name), { database: false, role: false }, 'and a drop removes its database and role')
})

t.test("a create that meets a stranger's database and role, made between its check and its CREATE, fails and leaves them whole", async (t) => {
  const name = `${prefix}intruder`
  t.teardown(async () => {
    await admin.dropDatabaseUnchecked(name)
    await admin.dropRoleUnchecked(name)
  })
  const racing = new Provisioner({
    catalog: a.silo.catalog,
    servers: a.silo.servers,
    migrator: a.silo.migrator,
    prefix,
    // Right after the create checked the names were free and recorded its entry.
    beforeStep: async (step) => {
      if (step !== 'role') return
      await admin.knex.raw('create role ?? nologin', [name])
      await admin.knex.raw('create database ?? owner ??', [name, name])
    }
  })
  await t.rejects(racing.create({ slug: 'intruder', domains: ['intruder.test'] }), { code: 'SLUG_TAKEN', message: /outside this catalog/ })
  t.same(await exists(name), { database: true, role: true }, 'the stranger\'s database and role are still there')
  t.equal(await a.silo.catalog.tenantBySlug('intruder'), null, 'and the create left no entry')
  const byA = (await doctor(envA, '--fix', '--yes', '--json')).json
  t.match(entryFor(byA.report.notOurs, name), { type: 'database', reason: /no Silo mark/ }, 'doctor lists them as not ours')
  t.notOk(JSON.stringify(byA.repaired).includes(name), 'and --fix --yes does nothing to them')
  t.same(await exists(name), { database: true, role: true })
})
