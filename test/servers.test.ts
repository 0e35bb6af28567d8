// Several PostgreSQL servers: the registry, placement, serving and migrating tenants on each,
// a server's outage, doctor over every server, and removal. Two real servers: DATABASE_URL's
// (registered as `default`) and an embedded one of this file's own.
import t from './helpers/tap.js'
import pg from 'pg'
import { diagnose, planRepair, repair, type DoctorDeps } from '../src/lifecycle/doctor.js'
import type { TenantRecord } from '../src/catalog/catalog-store.js'
import { migrateFleet, type TenantMigrationResult } from '../src/lifecycle/fleet-migrator.js'
import { TenantMigrator, type MigrationOutcome } from '../src/lifecycle/tenant-migrator.js'
import { tenantDatabaseName } from '../src/lifecycle/tenant-names.js'
import { templateDatabaseName } from '../src/lifecycle/tenant-template.js'
import type { Silo } from '../src/silo.js'
import { roleUrl, secondServer } from './helpers/servers.js'
import { openSilo } from '../src/silo.js'
import { anotherInstance, closeInTeardown, createTenant, testApp, testConfig } from './helpers/silo.js'
import { eventually } from './helpers/wait.js'

const file = t
const { silo, app } = await testApp(t)
const second = await secondServer(t)
const prefix = silo.config.tenantDbPrefix
const secondPassword = new URL(second.url).password

/** Runs SQL as the second server's superuser. */
const onSecond = async <T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> => {
  const client = new pg.Client({ connectionString: second.url })
  await client.connect()
  try {
    return (await client.query<T>(sql, values)).rows
  } finally {
    await client.end()
  }
}
const databasesOnSecond = async (): Promise<string[]> =>
  (await onSecond<{ datname: string }>('select datname from pg_database where datname like $1 order by datname', [`${prefix}%`])).map((row) => row.datname)
const serverOf = async (slug: string): Promise<string | undefined> => (await silo.catalog.tenantBySlug(slug))?.server.name
const portServing = async (target: Silo, slug: string): Promise<number> =>
  await target.withTenant(slug, async (db) => Number((await db.raw<{ rows: Array<{ port: number }> }>('select inet_server_port() as port')).rows[0]?.port))
const serverNames = async (): Promise<string[]> => (await silo.catalog.servers.list()).map((server) => server.name)

t.test('a server is recorded only when its URL answers, logs in and may create databases and roles; the password is never in a message', async (t) => {
  const noRights = await roleUrl(second.url, 'silo_no_rights', 'no-rights-password-123', 'NOCREATEDB NOCREATEROLE')
  const wrongPassword = new URL(second.url)
  wrongPassword.password = 'not-the-password-456'
  const defaultAgain = new URL(silo.config.databaseUrl ?? '')
  const refusals: Array<[string, string, RegExp]> = [
    ['postgres://silo:unreachable-pw-789@127.0.0.1:1/postgres', 'SERVER_UNUSABLE', /nothing answers as PostgreSQL at 127\.0\.0\.1:1/],
    [wrongPassword.toString(), 'SERVER_UNUSABLE', /login of role postgres .* was refused/],
    [noRights, 'SERVER_UNUSABLE', /role silo_no_rights may not create databases and roles/],
    ['http://user:some-pw-000@example.com/db', 'VALIDATION_FAILED', /must start with postgres:\/\//],
    ['not a url with pw-111', 'VALIDATION_FAILED', /not a URL/],
    [defaultAgain.toString(), 'SERVER_TAKEN', /registered already, as default/]
  ]
  for (const [url, code, message] of refusals) {
    const error = await silo.serverRegistry.add({ name: 'refused', url }).then(() => undefined, (error: unknown) => error as { code?: string, message: string })
    t.match(error, { code, message }, `${code}: ${message.source}`)
    for (const secret of ['unreachable-pw-789', 'not-the-password-456', 'no-rights-password-123', 'some-pw-000', 'pw-111', secondPassword]) {
      t.notOk(String(error?.message).includes(secret), 'no password in the message')
    }
  }
  await t.rejects(silo.serverRegistry.add({ name: 'Bad_Name', url: second.url }), { code: 'VALIDATION_FAILED' })
  t.same(await serverNames(), ['default'], 'nothing was recorded')

  const added = await silo.serverRegistry.add({ name: 'second', url: second.url })
  t.match(added, { name: 'second', status: 'active', tenants: 0, weight: 1, serverVersion: /^\d+/ })
  await t.rejects(silo.serverRegistry.add({ name: 'second', url: second.url }), { code: 'SERVER_TAKEN' }, 'a name is taken once')
  await t.rejects(silo.serverRegistry.add({ name: 'second', url: 'postgres://x:pw@127.0.0.1:1/db' }), { code: 'SERVER_TAKEN' }, 'which is said before connecting anywhere')
  await t.rejects(silo.serverRegistry.add({ name: 'second-again', url: second.url }), { code: 'SERVER_TAKEN', message: /as second/ }, 'and a server once')
  const [stored] = await silo.catalog.knex('servers').where({ name: 'second' }).pluck('admin_url') as string[]
  t.match(stored, /^v2:/, 'the admin URL is stored encrypted')
  t.notOk(stored?.includes(secondPassword), 'without the password in clear')
  t.notOk(JSON.stringify(added).includes(secondPassword), 'and a record serialized shows no admin URL')
})

t.test('placement spreads new tenants by tenants per weight, honours pins, and skips draining, full and unreachable servers', async (t) => {
  for (const slug of ['p1', 'p2', 'p3', 'p4']) await createTenant(silo, slug)
  t.same(await Promise.all(['p1', 'p2', 'p3', 'p4'].map(serverOf)), ['default', 'second', 'default', 'second'], 'fewest tenants first, ties by name')
  await silo.provisioner.create({ slug: 'pinned', domains: ['pinned.test'], server: 'second' })
  t.equal(await serverOf('pinned'), 'second', 'a pin wins over the order')
  t.equal((await createTenant(silo, 'p5')).server, 'default', 'and counts: default has fewer now')

  await silo.serverRegistry.setStatus('second', 'draining')
  t.equal((await createTenant(silo, 'p6')).server, 'default', 'a draining server takes no new tenant')
  await t.rejects(silo.provisioner.create({ slug: 'refused', domains: ['refused.test'], server: 'second' }), { code: 'SERVER_NOT_ACCEPTING', message: /draining/ })
  await silo.serverRegistry.setStatus('second', 'active')
  await silo.catalog.knex('servers').where({ name: 'default' }).update({ max_tenants: 4 })
  t.equal((await createTenant(silo, 'p7')).server, 'second', 'a full server takes no new tenant')
  await t.rejects(silo.provisioner.create({ slug: 'refused', domains: ['refused.test'], server: 'default' }), { code: 'SERVER_NOT_ACCEPTING', message: /full/ })
  await silo.catalog.knex('servers').where({ name: 'default' }).update({ max_tenants: null })

  await second.stop()
  t.teardown(async () => { await second.start() })
  await t.rejects(silo.provisioner.create({ slug: 'refused', domains: ['refused.test'], server: 'second' }), { code: 'SERVER_UNAVAILABLE' }, 'a pinned create on a server that does not answer fails')
  t.equal((await createTenant(silo, 'p8')).server, 'default', 'an unpinned one goes where it can')
  await second.start()
  t.equal(await silo.catalog.tenantBySlug('refused'), null, 'refused creates left no entry')
  const counts = Object.fromEntries((await silo.catalog.servers.list()).map((server) => [server.name, server.tenants]))
  t.same(counts, { default: 5, second: 4 })
})

t.test('a tenant on another server is served, migrated and reached as its own role there, and only there', async (t) => {
  t.equal(await portServing(silo, 'pinned'), second.port, "withTenant reaches the second server's database")
  t.not(await portServing(silo, 'p1'), second.port, "and a default tenant's is elsewhere")
  const posted = await app.inject({ method: 'POST', url: '/articles', headers: { host: 'pinned.test' }, payload: { title: 'on the second server', body: 'x' } })
  t.equal(posted.statusCode, 201, posted.body)
  const seen = await silo.withTenant('pinned', async (db) => await db('articles').pluck('title'))
  t.same(seen, ['on the second server'], 'the row is in its database on the second server')
  t.equal((await app.inject({ url: '/articles', headers: { host: 'p1.test' } })).json().items.length, 0, 'and in no other tenant')
  const tenant = await silo.catalog.tenantBySlug('pinned')
  const [shown] = await onSecond<{ server_version: string }>('show server_version')
  t.equal(tenant?.server.version, shown?.server_version.split(' ')[0], "its record carries its server's version")
  const results = await migrateFleet(silo.catalog, silo.migrator, ['p1', 'pinned'], { concurrency: 2 })
  t.same(results.map((result) => [result.slug, result.status]), [['p1', 'up-to-date'], ['pinned', 'up-to-date']], 'a fleet run reaches both servers')
  t.ok((await databasesOnSecond()).includes(`${prefix}pinned`))
})

t.test('a server that stops takes down only its tenants, with 503, and service comes back by itself', async (t) => {
  const hosts = ['p1.test', 'p3.test', 'pinned.test', 'p2.test']
  const onDefault = new Set(['p1.test', 'p3.test'])
  const get = async (host: string) => await app.inject({ url: '/articles', headers: { host } })
  for (const host of hosts) t.equal((await get(host)).statusCode, 200, `${host} serves`)
  await second.stop()
  const during = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
    const host = hosts[i % hosts.length] ?? ''
    return { host, res: await get(host) }
  }))
  for (const { host, res } of during) {
    if (onDefault.has(host)) t.equal(res.statusCode, 200, `${host} keeps serving`)
    else t.match({ status: res.statusCode, code: res.json().code }, { status: 503, code: 'TENANT_UNAVAILABLE' }, `${host} is unavailable`)
  }
  t.ok(during.every(({ res }) => !res.body.includes(secondPassword)), 'no answer carries a connection detail')
  await second.start()
  t.ok(await eventually(async () => (await get('pinned.test')).statusCode === 200, 20000), 'the second server\'s tenants serve again')
  t.equal((await get('p2.test')).statusCode, 200)
})

t.test('doctor checks every server against the tenants placed on it, and drops only what is ours there', async (t) => {
  const deps: DoctorDeps = { catalog: silo.catalog, servers: silo.servers, provisioner: silo.provisioner, prefix }
  const healthy = await diagnose(deps)
  t.same({ orphans: healthy.orphanDatabases, missing: healthy.missingDatabases, unreachable: healthy.unreachableServers }, { orphans: [], missing: [], unreachable: [] },
    'a tenant on the second server is no missing database on the default one, nor its database an orphan')
  const mark = silo.ownership.mark('tenant')
  await onSecond(`create database ${prefix}orphan`)
  await onSecond(`comment on database ${prefix}orphan is '${mark}'`)
  await onSecond(`create database ${prefix}stranger`)
  await onSecond(`drop database ${prefix}p2 with (force)`)
  const sick = await diagnose(deps)
  t.same(sick.orphanDatabases, [`${prefix}orphan@second`], 'an orphan on the second server is named with its server')
  t.same(sick.missingDatabases, ['p2'], 'a tenant whose database is gone from its server')
  t.ok(sick.notOurs.some((entry) => entry.name === `${prefix}stranger@second`), "a stranger's database there is not ours")
  const fixed = await repair(deps, planRepair(sick), { confirmed: true })
  t.same(fixed.dropped, { databases: [`${prefix}orphan@second`], roles: [], tenants: ['p2'] })
  const left = await databasesOnSecond()
  t.notOk(left.includes(`${prefix}orphan`), 'the orphan is dropped')
  t.ok(left.includes(`${prefix}stranger`), "the stranger's database is untouched")
  t.ok(left.includes(`${prefix}pinned`), 'and the tenants there too')
  t.equal(await silo.catalog.tenantBySlug('p2'), null)

  await second.stop()
  const blind = await diagnose(deps)
  t.same(blind.unreachableServers, ['second'], 'a server that does not answer is reported, not judged')
  t.same(blind.missingDatabases, [], 'and its tenants are not called missing')
  await second.start()
})

t.test("removing a server is refused while it holds tenants; then this catalog's template there goes, and another catalog's objects stay", async (t) => {
  // Another deployment (a catalog of its own) with the same prefix uses the same second server.
  // Its databases share our prefix: they are dropped with this file's, at its end.
  const otherConfig = testConfig({ TENANT_DB_PREFIX: prefix })
  const opened = closeInTeardown(file, otherConfig)
  const other = opened.silo = await openSilo(otherConfig)
  await other.serverRegistry.add({ name: 'shared', url: second.url })
  await other.provisioner.create({ slug: 'theirs', domains: ['theirs.test'], server: 'shared' })
  const otherTemplate = templateDatabaseName(prefix, other.ownership.identity)

  await t.rejects(silo.serverRegistry.remove('second'), { code: 'SERVER_IN_USE', message: /holds 3 tenants/ })
  await t.rejects(silo.serverRegistry.remove('default'), { code: 'SERVER_IN_USE' })
  await t.rejects(silo.serverRegistry.remove('nowhere'), { code: 'SERVER_NOT_FOUND' })
  for (const slug of ['p4', 'pinned', 'p7']) await silo.provisioner.drop(slug)
  t.notOk((await databasesOnSecond()).some((name) => ['pinned', 'p4', 'p7'].map((slug) => `${prefix}${slug}`).includes(name)), 'drops removed their databases there')
  const ourTemplate = templateDatabaseName(prefix, silo.ownership.identity)
  t.ok((await databasesOnSecond()).includes(ourTemplate), 'our template is there before')
  await silo.serverRegistry.remove('second')
  t.same(await serverNames(), ['default'])
  const left = await databasesOnSecond()
  t.notOk(left.includes(ourTemplate), 'our template there is dropped with it')
  t.ok(left.includes(otherTemplate), "the other catalog's template stays")
  t.ok(left.includes(`${prefix}theirs`), "and so does the other catalog's tenant")
  t.equal(await portServing(other, 'theirs'), second.port, 'which still serves')
  await other.provisioner.drop('theirs')
  await other.serverRegistry.remove('shared')
})

t.test('an instance started after a server was added serves and provisions its tenants too', async (t) => {
  await silo.serverRegistry.add({ name: 'late', url: second.url })
  await silo.provisioner.create({ slug: 'late-one', domains: ['late-one.test'], server: 'late' })
  const { app: appB } = await anotherInstance(t, silo.config)
  const res = await appB.inject({ url: '/tenant', headers: { host: 'late-one.test' } })
  t.equal(res.statusCode, 200, res.body)
  await silo.provisioner.drop('late-one')
  await silo.serverRegistry.remove('late')
})

t.test("a server's connections count against its own budget only: one held full makes its tenants wait, never another server's", async (t) => {
  await silo.serverRegistry.add({ name: 'tight', url: second.url, connectionBudget: 1 })
  t.teardown(async () => { await silo.serverRegistry.remove('tight') })
  for (const slug of ['tight-a', 'tight-b']) await silo.provisioner.create({ slug, domains: [`${slug}.test`], server: 'tight' })
  t.teardown(async () => { for (const slug of ['tight-a', 'tight-b']) await silo.provisioner.drop(slug) })
  const record = async (slug: string) => {
    const tenant = await silo.catalog.tenantBySlug(slug)
    if (tenant === null) throw new Error(`no tenant ${slug}`)
    return tenant
  }
  // The first tenant's query holds the server's one connection until the test lets it go: it
  // waits for an advisory lock the test holds in that database.
  const lockUrl = new URL(second.url)
  lockUrl.pathname = `/${prefix}tight_a`
  const locker = new pg.Client({ connectionString: lockUrl.toString() })
  await locker.connect()
  t.teardown(async () => { await locker.end() })
  await locker.query('select pg_advisory_lock(4242)')
  // As two requests would: each holds its lease until its query is done (a knex query runs once awaited).
  const holder = silo.pools.acquire(await record('tight-a'))
  const held = holder.db.raw('select pg_advisory_lock(4242), pg_advisory_unlock(4242)').then(() => { holder.release() })
  const waiter = silo.pools.acquire(await record('tight-b'))
  const waiting = waiter.db.raw('select 1').then(() => { waiter.release() })
  const budgetOf = (server: string) => silo.pools.stats().servers.find((budget) => budget.server === server)
  // This instance's share of the new server comes with the heartbeat its first pool there asks for.
  t.ok(await eventually(() => budgetOf('tight')?.waiting === 1 && budgetOf('tight')?.open === 1, 5000, 5), "the second tenant on the tight server waits for its server's one slot")
  t.match(budgetOf('tight'), { capacity: 1, open: 1 })
  const other = await app.inject({ url: '/articles', headers: { host: 'p1.test' } })
  t.equal(other.statusCode, 200, 'a tenant on another server is served meanwhile')
  t.equal(budgetOf('tight')?.waiting, 1, 'while the tight server is still full')
  await locker.query('select pg_advisory_unlock(4242)')
  await Promise.all([held, waiting])
  t.ok((budgetOf('default')?.capacity ?? 0) > 1, 'the default server has a budget of its own')
})

t.test("two instances share a server's budget: together they never hold more of its connections, and one that leaves gives its share back", async (t) => {
  await silo.serverRegistry.add({ name: 'shared-budget', url: second.url, connectionBudget: 4 })
  const slugs = ['sb-1', 'sb-2', 'sb-3', 'sb-4', 'sb-5', 'sb-6']
  for (const slug of slugs) await silo.provisioner.create({ slug, domains: [`${slug}.test`], server: 'shared-budget' })
  t.teardown(async () => {
    for (const slug of slugs) await silo.provisioner.drop(slug)
    await silo.serverRegistry.remove('shared-budget')
  })
  const b = await openSilo(silo.config)
  let closing: Promise<void> | undefined
  const closeB = async (): Promise<void> => { await (closing ??= b.close()) }
  t.teardown(closeB)
  const serverId = (await silo.catalog.servers.byName('shared-budget'))?.id ?? ''
  const claims = async () => await silo.catalog.knex('budget_claims').where({ server_id: serverId }).select<Array<{ instance_id: string, slots: number }>>('instance_id', 'slots')
  t.ok(await eventually(async () => {
    const held = await claims()
    return held.length === 2 && held.every((claim) => claim.slots === 2)
  }, 15000, 100), 'each instance comes to claim half of the budget')

  const backends = async (): Promise<number> => Number((await onSecond<{ n: string }>(
    "select count(*) as n from pg_stat_activity where datname = any($1) and application_name like 'silo:%'", [slugs.map((slug) => `${prefix}${slug.replace('-', '_')}`)]))[0]?.n)
  let peak = 0
  const sampling = { on: true }
  const sampler = (async () => {
    while (sampling.on) {
      peak = Math.max(peak, await backends())
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()
  // Six tenants on each instance at once, each holding its connection for 300 ms.
  const load = [silo, b].flatMap((instance) => slugs.map(async (slug) => {
    const tenant = await instance.catalog.tenantBySlug(slug)
    if (tenant === null) throw new Error(`no tenant ${slug}`)
    const lease = instance.pools.acquire(tenant)
    try {
      await lease.db.raw('select pg_sleep(0.3)')
    } finally {
      lease.release()
    }
  }))
  const outcomes = await Promise.allSettled(load)
  sampling.on = false
  await sampler
  t.same(outcomes.filter((outcome) => outcome.status === 'rejected').map((outcome) => String((outcome as PromiseRejectedResult).reason)), [], 'every query was served')
  t.ok(peak > 0 && peak <= 4, `the two instances together held at most the budget of 4 connections (peak ${peak})`)

  await closeB()
  t.ok(await eventually(async () => {
    const held = await claims()
    return held.length === 1 && held[0]?.slots === 4
  }, 15000, 100), 'once the other instance left, this one claims the whole budget')
})

t.test('a fleet migration runs --concurrency migrations at once on each server: with 1, one on each server side by side, never two on one', async (t) => {
  type Server = 'default' | 'fleet-two'
  const bySlug = new Map<string, Server>([['mc-d1', 'default'], ['mc-d2', 'default'], ['mc-s1', 'fleet-two'], ['mc-s2', 'fleet-two']])
  const slugs = [...bySlug.keys()]
  const databases = slugs.map((slug) => tenantDatabaseName(prefix, slug))
  const urls: Record<Server, string> = { default: silo.config.databaseUrl ?? '', 'fleet-two': second.url }
  const clients: pg.Client[] = []
  const connect = async (url: string, database?: string): Promise<pg.Client> => {
    const target = new URL(url)
    if (database !== undefined) target.pathname = `/${database}`
    const client = new pg.Client({ connectionString: target.toString(), application_name: 'silo-test-lock' })
    clients.push(client)
    await client.connect()
    return client
  }
  const under: { run?: Promise<unknown> } = {}
  // In order: the locks let go (so a run this test left waiting can finish), then the second
  // server's tenants and its registration go, so that a later test may register it again. The
  // default server's tenants go with the file's databases (each drop waits for a checkpoint).
  t.teardown(async () => {
    for (const client of clients) await client.end().catch(() => {})
    await under.run?.catch(() => {})
    for (const [slug, server] of bySlug) if (server === 'fleet-two' && await silo.catalog.tenantBySlug(slug) !== null) await silo.provisioner.drop(slug)
    if (await silo.catalog.servers.byName('fleet-two') !== null) await silo.serverRegistry.remove('fleet-two')
  })
  await silo.serverRegistry.add({ name: 'fleet-two', url: second.url })
  for (const [slug, server] of bySlug) await silo.provisioner.create({ slug, domains: [`${slug}.test`], server })
  const rolledBack = await migrateFleet(silo.catalog, silo.migrator, slugs, { direction: 'rollback', concurrency: 3 })
  t.same(rolledBack.map((result) => result.after), slugs.map(() => null), 'every tenant has its migration pending')

  // Each tenant's migration will wait for knex's migration lock row, which the test holds in an open transaction.
  const locks = new Map<string, pg.Client>()
  for (const [slug, server] of bySlug) {
    const client = await connect(urls[server], tenantDatabaseName(prefix, slug))
    await client.query('begin')
    await client.query('select * from knex_migrations_lock for update')
    locks.set(slug, client)
  }
  const watchers: Record<Server, pg.Client> = { default: await connect(urls.default), 'fleet-two': await connect(urls['fleet-two']) }
  type Session = { slug: string, waiting: boolean }
  /** The migrations PostgreSQL has sessions for on a server (TenantMigrator names them), and whether each waits for a lock. */
  const migrating = async (server: Server): Promise<Session[]> => (await watchers[server].query<Session>(
    "select substr(application_name, 14) as slug, wait_event_type is not distinct from 'Lock' as waiting from pg_stat_activity where application_name like 'silo-migrate:%' and datname = any($1) order by 1", [databases])).rows

  // The migrator each run goes through, counting the migrations under way on each server: a run
  // starts its migrations before any of them connects, so a second one on a server shows here.
  const running = new Map<string, number>()
  const peak = new Map<string, number>()
  let peakTotal = 0
  class CountingMigrator extends TenantMigrator {
    override async migrate (tenant: TenantRecord): Promise<MigrationOutcome> {
      const server = tenant.server.name
      running.set(server, (running.get(server) ?? 0) + 1)
      peak.set(server, Math.max(peak.get(server) ?? 0, running.get(server) ?? 0))
      peakTotal = Math.max(peakTotal, [...running.values()].reduce((sum, n) => sum + n, 0))
      try {
        return await super.migrate(tenant)
      } finally {
        running.set(server, (running.get(server) ?? 0) - 1)
      }
    }
  }
  const done = new Set<string>()
  const results = migrateFleet(silo.catalog, new CountingMigrator(), slugs, { concurrency: 1, onResult: (result: TenantMigrationResult) => { done.add(result.slug) } })
  under.run = results

  const released: string[] = []
  for (let round = 1; round <= 2; round++) {
    let seen: Record<Server, Session[]> = { default: [], 'fleet-two': [] }
    const one = await eventually(async () => {
      seen = { default: await migrating('default'), 'fleet-two': await migrating('fleet-two') }
      return Object.values(seen).every((sessions) => sessions.length === 1 && sessions[0]?.waiting === true)
    }, 30_000)
    t.ok(one, `round ${round}: on each server one migration waits for its lock, and no other runs there (${JSON.stringify(seen)})`)
    if (!one) break
    const waiting = [seen.default[0]?.slug ?? '', seen['fleet-two'][0]?.slug ?? '']
    t.same(waiting.map((slug) => bySlug.get(slug)), ['default', 'fleet-two'], `each its own server's tenant (${waiting.join(', ')})`)
    t.notOk(waiting.some((slug) => released.includes(slug)), 'not one that ran before')
    for (const slug of waiting) await locks.get(slug)?.query('commit')
    released.push(...waiting)
    t.ok(await eventually(() => waiting.every((slug) => done.has(slug)), 30_000), 'both finish once let go')
  }

  // After a round that failed, the locks still held go too, so that the run ends.
  for (const [slug, client] of locks) if (!released.includes(slug)) await client.query('commit')
  const outcome = await results
  const latest = await silo.migrator.latestVersion()
  t.same(outcome.map((result) => [result.slug, result.status, result.after]), slugs.map((slug) => [slug, 'migrated', latest]), 'every tenant ends migrated')
  t.same(Object.fromEntries(peak), { default: 1, 'fleet-two': 1 }, 'never two migrations at once on one server')
  t.equal(peakTotal, 2, 'and the two servers side by side')
  const versions = (await silo.catalog.listTenants()).filter((tenant) => bySlug.has(tenant.slug)).map((tenant) => tenant.schemaVersion)
  t.same(versions, slugs.map(() => latest), 'as the catalog records')
})
