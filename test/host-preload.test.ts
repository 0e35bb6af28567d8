import t from './helpers/tap.js'
import { anotherInstance, createTenant, testApp } from './helpers/silo.js'
import { eventually, sleep } from './helpers/wait.js'

// A short TTL: an answer still served from memory well after it came from a feed that keeps it exact, not from the TTL.
const TTL_MS = 100
const { silo: a } = await testApp(t, { HOST_CACHE_TTL_MS: TTL_MS })
for (const slug of ['north', 'south', 'east']) await createTenant(a, slug, { domains: [`${slug}.test`, `www.${slug}.test`] })
await a.syncCatalog()

t.test('a new instance holds every host in memory from the start: a first request asks the catalog nothing', async (t) => {
  const { silo: b, app } = await anotherInstance(t, a.config)
  t.ok(b.resolver.stats().cached >= 6, `every host of the three tenants is held (${b.resolver.stats().cached})`)
  for (const host of ['north.test', 'www.south.test', 'east.test']) {
    const res = await app.inject({ url: '/tenant', headers: { host } })
    t.equal(res.statusCode, 200, host)
    t.equal(res.json().slug, host.replace(/^www\./, '').replace(/\.test$/, ''), `${host} is its own tenant's`)
  }
  t.equal(b.resolver.stats().misses, 0, 'no host was looked up in the catalog')
})

t.test('with the feed up, an answer older than the TTL is served from memory, and a change still reaches it at once', async (t) => {
  const { silo: b, app } = await anotherInstance(t, a.config)
  await sleep(3 * TTL_MS)
  t.equal((await app.inject({ url: '/tenant', headers: { host: 'south.test' } })).statusCode, 200)
  t.equal(b.resolver.stats().misses, 0, 'past its TTL, the answer was not looked up again')
  await a.provisioner.setStatus('south', 'suspended')
  t.teardown(async () => { await a.provisioner.setStatus('south', 'active') })
  await b.syncCatalog()
  const res = await app.inject({ url: '/tenant', headers: { host: 'south.test' } })
  t.equal(res.statusCode, 403, 'the suspension came through the feed')
  t.equal(res.json().code, 'TENANT_SUSPENDED')
  t.ok(await eventually(async () => (await app.inject({ url: '/tenant', headers: { host: 'www.south.test' } })).statusCode === 403), 'for its other host too')
})

t.test('what is held is bounded by HOST_CACHE_MAX, and hosts past it are looked up as before', async (t) => {
  const { silo: b, app } = await anotherInstance(t, { ...a.config, hostCacheMax: 2 })
  t.ok(b.resolver.stats().cached <= 2, `at most 2 hosts held (${b.resolver.stats().cached})`)
  t.ok(b.resolver.stats().cached >= 1, 'and some are')
  for (const slug of ['north', 'south', 'east']) {
    t.equal((await app.inject({ url: '/tenant', headers: { host: `${slug}.test` } })).statusCode, 200, `${slug} is served`)
  }
  t.ok(b.resolver.stats().misses >= 1, 'the hosts not held were looked up')
})

t.test('an instance without the feed holds nothing ahead and keeps the TTL', async (t) => {
  const { silo: b, app } = await anotherInstance(t, a.config, { listen: false })
  t.equal(b.resolver.stats().cached, 0, 'nothing preloaded')
  t.equal((await app.inject({ url: '/tenant', headers: { host: 'east.test' } })).statusCode, 200)
  t.equal(b.resolver.stats().misses, 1)
  await sleep(3 * TTL_MS)
  t.equal((await app.inject({ url: '/tenant', headers: { host: 'east.test' } })).statusCode, 200)
  t.equal(b.resolver.stats().misses, 2, 'past its TTL, the answer was looked up again')
})
