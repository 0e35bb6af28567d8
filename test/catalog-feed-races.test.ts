import t from './helpers/tap.js'
import pg from 'pg'
import { CatalogListener } from '../src/catalog/catalog-listener.js'
import { HostResolver } from '../src/catalog/host-resolver.js'
import { openSilo, type Silo } from '../src/silo.js'
import { embeddedCatalogApp } from './helpers/embedded.js'
import { anotherInstance, createTenant, testApp, type Teardown } from './helpers/silo.js'
import { eventually, sleep } from './helpers/wait.js'

/**
 * The races of the catalog change feed, each forced into the losing order: a transaction held
 * open, a catalog table locked while a listener's query waits on it, a backend terminated while
 * a sync waits behind a blocked query. Nothing here waits for time to pass except on a condition
 * with a deadline.
 */

// Without a handler an unhandled rejection kills this process; with it, each test asserts none happened.
const unhandled: unknown[] = []
process.on('unhandledRejection', (reason) => { unhandled.push(reason) })

const { silo: a } = await testApp(t, { HOST_CACHE_TTL_MS: 600000 })
const { silo: b, app: appB } = await anotherInstance(t, a.config)

const catalogConnection = { ...a.server, database: a.config.catalogDatabase }

const slugAt = async (host: string): Promise<string | number> => {
  const res = await appB.inject({ url: '/tenant', headers: { host } })
  return res.statusCode === 200 ? res.json().slug : res.statusCode
}

/** Backends LISTENing for this catalog, optionally only those waiting for a lock. */
const listenerPids = async (waitingOnLock = false): Promise<number[]> => (await a.admin.knex.raw<{ rows: Array<{ pid: number }> }>(
  `select pid from pg_stat_activity where application_name = 'silo-listener' and datname = ?
   ${waitingOnLock ? "and wait_event_type = 'Lock'" : ''}`, [a.config.catalogDatabase]
)).rows.map((row) => row.pid)

const lockWaiter = async (pid: number): Promise<boolean> => (await a.admin.knex.raw<{ rows: unknown[] }>(
  "select 1 from pg_stat_activity where pid = ? and wait_event_type = 'Lock'", [pid]
)).rows.length === 1

/** A session of the test's own on the catalog, to hold transactions and locks. */
const catalogSession = async (t: Teardown): Promise<pg.Client> => {
  const client = new pg.Client({ ...catalogConnection, application_name: 'silo-test-session' })
  await client.connect()
  t.teardown(async () => { await client.end().catch(() => {}) })
  return client
}
const pidOf = async (session: pg.Client): Promise<number> =>
  (await session.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid ?? 0

/** Another instance on the same catalog, with its listener's backend; closed once, here or in teardown. */
const openInstance = async (t: Teardown): Promise<{ silo: Silo, listenerPid: number, close: () => Promise<void> }> => {
  const before = await listenerPids()
  const silo = await openSilo(a.config)
  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => { await (closing ??= silo.close()) }
  t.teardown(close)
  const listenerPid = (await listenerPids()).find((pid) => !before.includes(pid))
  if (listenerPid === undefined) throw new Error('the new instance has no listener backend')
  return { silo, listenerPid, close }
}

const tenantId = async (slug: string): Promise<string> => {
  const tenant = await a.catalog.tenantBySlug(slug)
  if (tenant === null) throw new Error(`no tenant ${slug}`)
  return tenant.id
}

t.test('a domain inserted and updated in one transaction stays in every index (no notification is swallowed as a duplicate)', async (t) => {
  await createTenant(a, 'acme')
  await b.syncCatalog()
  t.equal(await slugAt('acme.test'), 'acme')
  // Insert www, clear the old primary (which rewrites www too), make www primary: www's
  // notifications are insert, delete, insert, delete, insert, and the later inserts used to
  // be identical to the first, so only `insert, delete` arrived.
  const acme = await tenantId('acme')
  await a.catalog.knex.transaction(async (trx) => {
    await trx('domains').insert({ host: 'www.acme.test', tenant_id: acme, is_primary: false })
    await trx('domains').where({ tenant_id: acme }).update({ is_primary: false })
    await trx('domains').where({ host: 'www.acme.test' }).update({ is_primary: true })
  })
  await b.syncCatalog()
  t.equal(await slugAt('www.acme.test'), 'acme', 'the new primary host is served')
  t.equal(await slugAt('acme.test'), 'acme', 'and so is the old one')
  t.same((await appB.inject({ url: '/tenant', headers: { host: 'acme.test' } })).json().domains, ['www.acme.test', 'acme.test'],
    'and the cached record lists both, the new primary first')
})

t.test('a domain removed, added back and removed again in one transaction leaves the index (a repeated change is announced too)', async (t) => {
  await createTenant(a, 'cyberdyne', { domains: ['cyberdyne.test', 'flap.cyberdyne.test'] })
  await b.syncCatalog()
  t.equal(await slugAt('flap.cyberdyne.test'), 'cyberdyne')
  const cyberdyne = await tenantId('cyberdyne')
  // The second removal's notification is the same change as the first: it must still arrive.
  await a.catalog.knex.transaction(async (trx) => {
    await trx('domains').where({ host: 'flap.cyberdyne.test' }).delete()
    await trx('domains').insert({ host: 'flap.cyberdyne.test', tenant_id: cyberdyne })
    await trx('domains').where({ host: 'flap.cyberdyne.test' }).delete()
  })
  await b.syncCatalog()
  t.equal(b.resolver.cached('flap.cyberdyne.test'), null, 'the host is unknown without a catalog query')
  const hosts = await a.catalog.knex('domains').pluck('host')
  t.equal(b.resolver.stats().indexed, hosts.length, 'the index holds exactly the catalog\'s domains')
})

t.test('a domain moved to another tenant in one transaction never leaves the index, not even between its notifications', async (t) => {
  await createTenant(a, 'initech')
  await createTenant(a, 'hooli')
  await a.provisioner.addDomain('initech', 'moved.test')

  /** Whether `moved.test` was still answerable after each change the listener applied. */
  const states: string[] = []
  class WatchedResolver extends HostResolver {
    #record (): void { states.push(this.cached('moved.test') === null ? 'unknown' : 'indexed') }
    override invalidateHost (host: string): void { super.invalidateHost(host); this.#record() }
    override forgetHost (host: string): void { super.forgetHost(host); this.#record() }
    override invalidateTenant (id: string): void { super.invalidateTenant(id); this.#record() }
  }
  const resolver = new WatchedResolver(a.catalog, { ttlMs: 600000, max: 100 })
  const listener = new CatalogListener({ connection: catalogConnection, resolver })
  await listener.start()
  t.teardown(async () => { await listener.stop() })
  await listener.sync()
  t.equal((await resolver.resolve('moved.test'))?.slug, 'initech')

  const [initech, hooli] = [await tenantId('initech'), await tenantId('hooli')]
  states.length = 0
  await a.catalog.knex.transaction(async (trx) => {
    await trx('domains').where({ host: 'moved.test', tenant_id: initech }).delete()
    await trx('domains').insert({ host: 'moved.test', tenant_id: hooli })
  })
  await listener.sync()
  t.ok(states.length >= 2, `the delete and the insert were applied (${states.length} steps)`)
  t.same(states.filter((state) => state !== 'indexed'), [], 'after every step the host was still in the index')
  t.equal((await resolver.resolve('moved.test'))?.slug, 'hooli', 'and it now answers for its new tenant')

  // A real removal does leave the index, once the catalog has confirmed it.
  const indexed = resolver.stats().indexed ?? 0
  await a.catalog.knex('domains').where({ host: 'moved.test' }).delete()
  await listener.sync()
  t.equal(resolver.stats().indexed, indexed - 1, 'a removed host leaves the index')
  t.equal(resolver.cached('moved.test'), null, 'and is unknown without a catalog query')
})

t.test('a domain committed while the feed rebuilds its index is not lost', async (t) => {
  await createTenant(a, 'globex')
  const c = await openInstance(t)
  const feed: boolean[] = []
  c.silo.events.on('catalog:feed', (state) => { feed.push(state.connected) })

  // The rebuild LISTENs, reads the domains, then reads the key id: holding catalog_identity
  // stops it after its snapshot of the domains and before it installs them.
  const locker = await catalogSession(t)
  await locker.query('begin')
  await locker.query('lock table catalog_identity in access exclusive mode')
  const others = await listenerPids()
  await a.admin.knex.raw('select pg_terminate_backend(?)', [c.listenerPid])
  t.ok(await eventually(() => feed.includes(false)), 'the feed was lost')
  t.ok(await eventually(async () => (await listenerPids(true)).some((pid) => !others.includes(pid))),
    'the reconnecting listener has read the domains and waits for the key id')

  // Committed after the rebuild's snapshot: only its notification can tell the new index.
  await a.catalog.knex('domains').insert({ host: 'late.globex.test', tenant_id: await tenantId('globex') })
  await locker.query('commit')
  t.ok(await eventually(() => feed.at(-1) === true), 'the feed is back')
  await c.silo.syncCatalog()
  t.equal((await c.silo.resolver.resolve('late.globex.test'))?.slug, 'globex', 'the domain committed during the rebuild is served')
})

t.test('a sync in flight when the feed is stopped rejects, and the process goes on', async (t) => {
  const c = await openInstance(t)
  await c.silo.syncCatalog()
  const before = unhandled.length
  const pending = c.silo.syncCatalog()
  const closing = c.close()
  await t.rejects(pending, /stopped/, 'the sync is refused')
  await closing
  // Past the turn of the event loop in which an unhandled rejection is reported.
  await new Promise((resolve) => setImmediate(resolve))
  t.same(unhandled.slice(before).map(String), [], 'no unhandled rejection')
})

t.test('a sync in flight when the feed is lost rejects, and the process goes on', async (t) => {
  await createTenant(a, 'umbrella', { domains: ['umbrella.test', 'gone.umbrella.test'] })
  const c = await openInstance(t)
  await c.silo.syncCatalog()
  const before = unhandled.length

  // Hold the listener's connection busy: it confirms a removed domain with a query on domains,
  // and that query waits behind a lock taken, in order, right as the removal commits.
  const remover = await catalogSession(t)
  const locker = await catalogSession(t)
  await remover.query('begin')
  await remover.query("delete from domains where host = 'gone.umbrella.test'")
  const lockerPid = await pidOf(locker)
  await locker.query('begin')
  const locked = locker.query('lock table domains in access exclusive mode')
  t.ok(await eventually(async () => await lockWaiter(lockerPid)), 'the lock waits for the removal')
  await remover.query('commit')
  await locked
  t.ok(await eventually(async () => await lockWaiter(c.listenerPid)), 'the listener waits on the lock')

  // The refusal is awaited from before the kill: the listener may learn of it before the
  // killing query's answer arrives, and a rejection with no handler yet counts as unhandled.
  const refused = t.rejects(c.silo.syncCatalog(), /lost/, 'the sync is refused')
  await a.admin.knex.raw('select pg_terminate_backend(?)', [c.listenerPid])
  await refused
  await locker.query('rollback')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(unhandled.slice(before).map(String), [], 'no unhandled rejection')
})

t.test('close() while the feed reconnects leaves no listener behind and applies nothing after', async (t) => {
  await createTenant(a, 'wayne')
  const c = await openInstance(t)
  const feed: boolean[] = []
  c.silo.events.on('catalog:feed', (state) => { feed.push(state.connected) })

  // The reconnect's start() LISTENs, then waits to read the domains.
  const locker = await catalogSession(t)
  await locker.query('begin')
  await locker.query('lock table domains in access exclusive mode')
  const others = (await listenerPids()).filter((pid) => pid !== c.listenerPid)
  await a.admin.knex.raw('select pg_terminate_backend(?)', [c.listenerPid])
  t.ok(await eventually(() => feed.includes(false)), 'the feed was lost')
  t.ok(await eventually(async () => (await listenerPids(true)).some((pid) => !others.includes(pid))),
    'the reconnecting listener waits to read the domains')

  await c.close()
  const reported = feed.length
  await locker.query('rollback')
  t.ok(await eventually(async () => (await listenerPids()).every((pid) => others.includes(pid))),
    'no listener backend of the closed instance remains')

  // A change after close: the instance still open applies it, the closed one must not.
  await a.catalog.knex('domains').insert({ host: 'after-close.wayne.test', tenant_id: await tenantId('wayne') })
  await b.syncCatalog()
  t.equal(await slugAt('after-close.wayne.test'), 'wayne', 'the open instance got the change')
  t.equal(c.silo.resolver.stats().indexed, null, 'the closed instance installed no index')
  t.same(feed.slice(reported), [], 'and reported nothing after close')
})

t.test('a tenant suspended after its cache entry\'s TTL passed is not served from that entry during a catalog outage', async (t) => {
  const { silo: e, app: appE, catalogServer } = await embeddedCatalogApp(t, { HOST_CACHE_TTL_MS: 200 })
  await createTenant(e, 'stark')
  // Its own notifications first: one arriving during the first look-up would keep the answer out of the cache.
  await e.syncCatalog()
  const status = async (): Promise<string> => {
    const res = await appE.inject({ url: '/tenant', headers: { host: 'stark.test' } })
    return res.statusCode === 200 ? '200' : `${res.statusCode} ${String(res.json().code)}`
  }
  t.equal(await status(), '200')
  // Past its TTL, the entry is still served while the feed keeps it exact, and kept (to be served stale when the feed is down).
  await sleep(400)
  t.ok(e.resolver.cached('stark.test') !== undefined && e.resolver.stats().cached === 1, 'its cache entry, past its TTL, is kept')
  await e.catalog.knex('tenants').where({ slug: 'stark' }).update({ status: 'suspended' })
  await e.syncCatalog()

  await catalogServer.stop()
  t.equal(await status(), '503 CATALOG_UNAVAILABLE', 'during the outage it is unavailable, not served as active')
  t.equal(e.resolver.stats().staleServed, 0, 'nothing was served stale')
  await catalogServer.start()
  t.ok(await eventually(async () => await status() === '403 TENANT_SUSPENDED', 20000), 'once the catalog is back, it is suspended')
})

t.test('no rejection went unhandled anywhere in this file', async (t) => {
  await new Promise((resolve) => setImmediate(resolve))
  t.same(unhandled.map(String), [])
})
