import t from 'tap'
import { buildApp } from '../src/app.js'
import { openSilo } from '../src/silo.js'
import { createTenant, testApp } from './helpers/silo.js'

/** Polls until `check` holds (notifications arrive asynchronously), or gives up after `ms`. */
const eventually = async (check: () => Promise<boolean>, ms = 5000): Promise<boolean> => {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return await check()
}

// A long TTL: anything that changes on the second instance before it expires came through the feed.
const { silo: a, app: appA } = await testApp(t, { HOST_CACHE_TTL_MS: 600000 })
const b = await openSilo(a.config)
const appB = await buildApp(b)
t.teardown(async () => {
  await appB.close()
  await b.close()
})
const slugAt = async (host: string): Promise<string | number> => {
  const res = await appB.inject({ url: '/tenant', headers: { host } })
  return res.statusCode === 200 ? res.json().slug : res.statusCode
}

t.test('a change made by one instance reaches another at once, not after the cache TTL', async (t) => {
  await createTenant(a, 'acme')
  t.ok(await eventually(async () => await slugAt('acme.test') === 'acme'), 'a tenant created elsewhere is served')

  t.equal(await slugAt('www.acme.test'), 404, 'an unknown host is 404 (and would be cached as unknown)')
  await a.provisioner.addDomain('acme', 'www.acme.test')
  t.ok(await eventually(async () => await slugAt('www.acme.test') === 'acme'), 'a domain added elsewhere is served')
  t.ok(await eventually(async () => (await appB.inject({ url: '/tenant', headers: { host: 'acme.test' } })).json().domains.length === 2),
    'and the record cached for its other domain lists it')

  await a.provisioner.setStatus('acme', 'suspended')
  t.ok(await eventually(async () => await slugAt('acme.test') === 403), 'a suspension elsewhere takes effect')
  await a.provisioner.setStatus('acme', 'active')
  t.ok(await eventually(async () => await slugAt('acme.test') === 'acme'), 'so does a resume')

  await a.provisioner.removeDomain('www.acme.test')
  t.ok(await eventually(async () => await slugAt('www.acme.test') === 404), 'a domain removed elsewhere stops being served')

  await a.provisioner.drop('acme')
  t.ok(await eventually(async () => await slugAt('acme.test') === 404), 'a tenant dropped elsewhere is gone')
})

t.test('with the feed connected, unknown hosts never reach the catalog', async (t) => {
  await createTenant(a, 'globex')
  t.ok(await eventually(async () => await slugAt('globex.test') === 'globex'))
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
  t.ok(await eventually(async () => await slugAt('initech.test') === 'initech'))
  await a.catalog.knex('tenants').where({ slug: 'initech' }).update({ status: 'suspended' })
  t.ok(await eventually(async () => await slugAt('initech.test') === 403), 'served as suspended')
  t.ok(await eventually(async () => (await appA.inject({ url: '/tenant', headers: { host: 'initech.test' } })).statusCode === 403),
    'by the instance that did not make the change either')
})
