import t from './helpers/tap.js'
import { openSilo } from '../src/silo.js'
import { anotherInstance, createTenant, testApp } from './helpers/silo.js'
import { eventually } from './helpers/wait.js'

// A long TTL: anything that changes on the second instance before it expires came through the feed.
const { silo: a, app: appA } = await testApp(t, { HOST_CACHE_TTL_MS: 600000 })
const { silo: b, app: appB } = await anotherInstance(t, a.config)
const slugAt = async (host: string): Promise<string | number> => {
  const res = await appB.inject({ url: '/tenant', headers: { host } })
  return res.statusCode === 200 ? res.json().slug : res.statusCode
}

t.test('a change made by one instance reaches another at once, not after the cache TTL', async (t) => {
  await createTenant(a, 'acme')
  t.ok(await eventually(async () => await slugAt('acme.test') === 'acme', 30000, 25), 'a tenant created elsewhere is served')

  t.equal(await slugAt('www.acme.test'), 404, 'an unknown host is 404 (and would be cached as unknown)')
  await a.provisioner.addDomain('acme', 'www.acme.test')
  t.ok(await eventually(async () => await slugAt('www.acme.test') === 'acme', 30000, 25), 'a domain added elsewhere is served')
  t.ok(await eventually(async () => (await appB.inject({ url: '/tenant', headers: { host: 'acme.test' } })).json().domains.length === 2, 30000, 25),
    'and the record cached for its other domain lists it')

  await a.provisioner.setStatus('acme', 'suspended')
  t.ok(await eventually(async () => await slugAt('acme.test') === 403, 30000, 25), 'a suspension elsewhere takes effect')
  await a.provisioner.setStatus('acme', 'active')
  t.ok(await eventually(async () => await slugAt('acme.test') === 'acme', 30000, 25), 'so does a resume')

  await a.provisioner.removeDomain('www.acme.test')
  t.ok(await eventually(async () => await slugAt('www.acme.test') === 404, 30000, 25), 'a domain removed elsewhere stops being served')

  await a.provisioner.drop('acme')
  t.ok(await eventually(async () => await slugAt('acme.test') === 404, 30000, 25), 'a tenant dropped elsewhere is gone')
})

t.test('with the feed connected, unknown hosts never reach the catalog', async (t) => {
  await createTenant(a, 'globex')
  t.ok(await eventually(async () => await slugAt('globex.test') === 'globex', 30000, 25))
  const before = b.resolver.stats()
  for (let i = 0; i < 500; i++) {
    const res = await appB.inject({ url: '/articles', headers: { host: `random-${i}.example` } })
    if (res.statusCode !== 404) t.fail(`random-${i}.example answered ${res.statusCode}`)
  }
  const after = b.resolver.stats()
  t.equal(after.misses - before.misses, 0, 'no catalog query for an unknown host')
  t.equal(after.negativeCached, before.negativeCached, 'and no cache entry either')
  t.equal(after.negativeHits - before.negativeHits, 500)
})

t.test('a tenant edited by hand in the catalog is followed too (the triggers, not the code, announce it)', async (t) => {
  await createTenant(a, 'initech')
  t.ok(await eventually(async () => await slugAt('initech.test') === 'initech', 30000, 25))
  await a.catalog.knex('tenants').where({ slug: 'initech' }).update({ status: 'suspended' })
  t.ok(await eventually(async () => await slugAt('initech.test') === 403, 30000, 25), 'served as suspended')
  t.ok(await eventually(async () => (await appA.inject({ url: '/tenant', headers: { host: 'initech.test' } })).statusCode === 403, 30000, 25),
    'by the instance that did not make the change either')
})

t.test('syncCatalog: once it resolves, every change committed before it has been applied here', async (t) => {
  await createTenant(a, 'hooli')
  // No polling from here on: each answer must already be right when syncCatalog resolves.
  await b.syncCatalog()
  t.equal(await slugAt('hooli.test'), 'hooli', 'a tenant created elsewhere')
  for (let round = 0; round < 5; round++) {
    await a.catalog.knex('tenants').where({ slug: 'hooli' }).update({ status: 'suspended' })
    await b.syncCatalog()
    t.equal(await slugAt('hooli.test'), 403, `round ${round}: a suspension by hand`)
    await a.catalog.knex('tenants').where({ slug: 'hooli' }).update({ status: 'active' })
    await b.syncCatalog()
    t.equal(await slugAt('hooli.test'), 'hooli', `round ${round}: and the resume`)
  }
  await a.provisioner.addDomain('hooli', 'www.hooli.test')
  await b.syncCatalog()
  t.equal(await slugAt('www.hooli.test'), 'hooli', 'a domain added elsewhere')

  // Concurrent syncs each get their own marker back, their queries sent one at a time: a pg
  // client sent a query while one is under way warns (pg 8) and will refuse it (pg 9).
  const warnings: string[] = []
  const onWarning = (warning: Error): void => { warnings.push(`${warning.name}: ${warning.message}`) }
  process.on('warning', onWarning)
  try {
    await Promise.all(Array.from({ length: 20 }, async () => { await b.syncCatalog() }))
  } finally {
    process.off('warning', onWarning)
  }
  t.pass('20 concurrent syncs resolved')
  t.same(warnings.filter((warning) => /already executing a query/.test(warning)), [], 'and no query was sent on the feed\'s connection while another was under way')
})

t.test('syncCatalog rejects while the feed is down, and works again once it is back', async (t) => {
  const c = await openSilo(a.config)
  t.teardown(async () => { await c.close() })
  const states: boolean[] = []
  c.events.on('catalog:feed', (state) => { states.push(state.connected) })
  await c.syncCatalog()
  // Cut the feed of `c` only: its listener is the one backend LISTENing that `a` and `b` did not open.
  const listeners = async (): Promise<number[]> => (await a.admin.knex.raw<{ rows: Array<{ pid: number }> }>(
    "select pid from pg_stat_activity where application_name = 'silo-listener' and datname = ? order by backend_start", [a.config.catalogDatabase]
  )).rows.map((row) => row.pid)
  const newest = (await listeners()).at(-1)
  if (newest === undefined) return t.fail('the listener of the third instance has no backend')
  await a.admin.knex.raw('select pg_terminate_backend(?)', [newest])
  t.ok(await eventually(async () => states.includes(false), 30000, 25), 'the feed noticed it was cut')
  await t.rejects(c.syncCatalog(), /not connected|lost/, 'a sync while it is down is refused, not left hanging')
  t.ok(await eventually(async () => states.at(-1) === true, 30000, 25), 'the feed reconnected')
  await c.syncCatalog()
  t.pass('and syncs again')
})
