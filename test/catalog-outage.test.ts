import t from './helpers/tap.js'
import type { LightMyRequestResponse } from 'fastify'
import { buildApp } from '../src/app.js'
import { openSilo } from '../src/silo.js'
import { countTenantBackends } from '../src/testing/backends.js'
import { closeInTeardown, createTenant, testConfig } from './helpers/silo.js'
import { embeddedCatalogApp } from './helpers/embedded.js'
import { eventually, sleep } from './helpers/wait.js'

/**
 * The catalog lives on an embedded PostgreSQL that this test stops and starts again on the
 * same port, under a steady load; tenant databases stay on the DATABASE_URL server. A short
 * host-cache TTL makes cached answers expire during the outage, so they are served stale.
 */
const { silo, app, catalogServer } = await embeddedCatalogApp(t, { HOST_CACHE_TTL_MS: 200 })

for (const slug of ['alpha', 'bravo', 'charlie', 'delta']) await createTenant(silo, slug)
const tenantPassword = (await silo.catalog.tenantBySlug('alpha'))?.database.password ?? ''

/**
 * Every phase of the outage, in order. A response is counted under the phase its request
 * started and ended in, or under `<start>><end>` when a phase change fell in between.
 */
type Phase = 'warm' | 'stopping' | 'down' | 'starting' | 'recovering' | 'recovered'
type Target = 'cached' | 'uncached' | 'unknown' | 'readyz' | 'healthz'
let phase: Phase = 'warm'
const outcomes = new Map<string, number>()
const leaks: string[] = []
let total = 0

const outcomeOf = (res: LightMyRequestResponse): string => {
  if (res.statusCode < 400) return String(res.statusCode)
  const body = res.json() as { code?: string }
  return `${res.statusCode} ${body.code ?? '?'}`
}
const count = (target: Target, at: string, outcome: string): void => {
  const key = `${at} ${target} ${outcome}`
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
  total++
}
/** Outcomes of one target in one phase, e.g. { '200': 123 }. */
const seen = (at: string, target: Target): Record<string, number> => {
  const found: Record<string, number> = {}
  for (const [key, n] of outcomes) {
    const [p, tg, ...rest] = key.split(' ')
    if (p === at && tg === target) found[rest.join(' ')] = n
  }
  return found
}

/** A 5xx body carries Silo's message only: no SQL, stack, address or credentials. */
const checkBody = (res: LightMyRequestResponse): void => {
  if (res.statusCode < 500) return
  const text = res.body
  const body = res.json() as Record<string, unknown>
  const keys = Object.keys(body).sort().join(',')
  if (keys !== 'code,error,message,statusCode' || /select |postgres|127\.0\.0\.1|ECONNREFUSED|\n\s+at |silo_test_/i.test(text) ||
    (tenantPassword !== '' && text.includes(tenantPassword))) {
    leaks.push(text)
  }
}

let unknownSerial = 0
const requestFor = (target: Target): { url: string, host: string } => {
  switch (target) {
    case 'cached': return { url: '/articles', host: unknownSerial % 2 === 0 ? 'alpha.test' : 'bravo.test' }
    // Never asked for before the outage, so nothing about it is cached when the catalog goes.
    case 'uncached': return { url: '/articles', host: unknownSerial % 2 === 0 ? 'charlie.test' : 'delta.test' }
    case 'unknown': return { url: '/articles', host: `nobody-${unknownSerial}.test` }
    case 'readyz': return { url: '/readyz', host: 'alpha.test' }
    case 'healthz': return { url: '/healthz', host: 'alpha.test' }
  }
}

const load = { running: true }
const worker = async (id: number): Promise<void> => {
  const targets: Target[] = ['cached', 'uncached', 'unknown', 'cached', 'readyz', 'healthz']
  for (let i = id; load.running; i++) {
    const target = targets[i % targets.length] as Target
    const started = phase
    // Asked for only once the catalog is gone: one answer before that would be cached (and rightly served stale).
    if (target === 'uncached' && (started === 'warm' || started === 'stopping')) continue
    unknownSerial++
    const { url, host } = requestFor(target)
    const res = await app.inject({ url, headers: { host } })
    const ended = phase
    checkBody(res)
    count(target, started === ended ? started : `${started}>${ended}`, outcomeOf(res))
    await sleep(2)
  }
}

t.test('warm-up: every tenant is served and the change feed has indexed every domain', async (t) => {
  for (const host of ['alpha.test', 'bravo.test']) {
    t.equal((await app.inject({ url: '/articles', headers: { host } })).statusCode, 200, host)
  }
  t.equal(silo.resolver.stats().indexed, 4)
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200)
})

t.test('the catalog server goes down and comes back under load', async (t) => {
  const workers = Array.from({ length: 6 }, async (_, id) => { await worker(id) })
  const feed: boolean[] = []
  silo.events.on('catalog:feed', (state) => { feed.push(state.connected) })
  await sleep(400)

  phase = 'stopping'
  const stopStarted = Date.now()
  await catalogServer.stop()
  phase = 'down'
  t.ok(await eventually(async () => silo.resolver.stats().indexed === null, 2000), 'the feed noticed: no domain index while it is down')
  const staleBefore = silo.resolver.stats().staleServed

  // Explicit probes while down, besides the load.
  const uncached = await app.inject({ url: '/articles', headers: { host: 'charlie.test' } })
  t.equal(uncached.statusCode, 503, 'a known but uncached host is 503, not 404')
  t.equal(uncached.json().code, 'CATALOG_UNAVAILABLE')
  t.ok(uncached.headers['retry-after'], 'with Retry-After')
  const unknown = await app.inject({ url: '/articles', headers: { host: 'never-seen.test' } })
  t.equal(unknown.statusCode, 503, 'an unknown host is 503 too: the catalog cannot say it is unknown')
  t.equal(unknown.json().code, 'CATALOG_UNAVAILABLE')
  const cached = await app.inject({ url: '/articles', headers: { host: 'alpha.test' } })
  t.equal(cached.statusCode, 200, 'a cached tenant keeps serving')
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 503, '/readyz says not ready')
  t.equal(ready.json().code, 'CATALOG_UNAVAILABLE')
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200, '/healthz says alive')
  // The cached tenant record carries its domains: GET /tenant needs no catalog query either.
  const info = await app.inject({ url: '/tenant', headers: { host: 'alpha.test' } })
  t.equal(info.statusCode, 200, `GET /tenant on a cached tenant answers (${outcomeOf(info)})`)
  t.same(info.json().domains, ['alpha.test'], 'with its domains')

  await sleep(2000)
  t.ok(silo.resolver.stats().staleServed > staleBefore, `expired cache entries were served stale (${silo.resolver.stats().staleServed - staleBefore} times)`)

  phase = 'starting'
  const downFor = Date.now() - stopStarted
  await catalogServer.start()
  phase = 'recovering'
  const restarted = Date.now()
  const recovered = await eventually(async () => {
    const [ready, known, unknown] = await Promise.all([
      app.inject({ url: '/readyz' }),
      app.inject({ url: '/articles', headers: { host: 'delta.test' } }),
      app.inject({ url: '/articles', headers: { host: `after-${Date.now()}.test` } })
    ])
    return ready.statusCode === 200 && known.statusCode === 200 && unknown.statusCode === 404 && silo.resolver.stats().indexed === 4
  }, 20000)
  const recoveredIn = Date.now() - restarted
  t.ok(recovered, `recovered by itself, without a restart of Silo (${recoveredIn} ms after the catalog came back)`)
  t.same(feed.slice(-1), [true], 'the change feed reported itself connected again')

  // The feed is live again: a domain inserted by hand reaches the index through NOTIFY.
  const bravo = await silo.catalog.tenantBySlug('bravo')
  await silo.catalog.knex('domains').insert({ host: 'www.bravo.test', tenant_id: bravo?.id, is_primary: false })
  t.ok(await eventually(async () => silo.resolver.stats().indexed === 5), 'a catalog change after the outage reaches the index')
  t.equal((await app.inject({ url: '/tenant', headers: { host: 'www.bravo.test' } })).json().slug, 'bravo')

  phase = 'recovered'
  await sleep(500)
  load.running = false
  await Promise.all(workers)

  t.comment(`catalog down for ${downFor} ms, recovered ${recoveredIn} ms after it came back; ${total} requests under load`)
  for (const at of new Set([...outcomes.keys()].map((key) => key.split(' ')[0] ?? ''))) {
    const line = (['cached', 'uncached', 'unknown', 'readyz', 'healthz'] as const)
      .map((target) => `${target} ${JSON.stringify(seen(at, target))}`).join('  ')
    t.comment(`${at.padEnd(20)} ${line}`)
  }

  const all = [...outcomes.entries()]
  t.same(all.filter(([key]) => / 500 /.test(`${key} `) || key.includes('INTERNAL_ERROR')), [], 'no 500, in any phase')
  t.same(all.filter(([key]) => /(cached|uncached) 404/.test(key)), [], 'a known host never got 404, in any phase')
  t.same(leaks, [], 'no 5xx body carried SQL, a stack, an address or a password')

  t.same(seen('warm', 'cached'), { 200: seen('warm', 'cached')['200'] }, 'before: cached tenants 200')
  t.same(seen('warm', 'unknown'), { '404 TENANT_NOT_FOUND': seen('warm', 'unknown')['404 TENANT_NOT_FOUND'] }, 'before: unknown hosts 404')

  const down = { cached: seen('down', 'cached'), uncached: seen('down', 'uncached'), unknown: seen('down', 'unknown'), readyz: seen('down', 'readyz'), healthz: seen('down', 'healthz') }
  t.ok((down.cached['200'] ?? 0) > 20, 'down: the load kept running against cached tenants')
  t.same(Object.keys(down.cached), ['200'], 'down: cached tenants answered 200, every time')
  t.ok((down.uncached['503 CATALOG_UNAVAILABLE'] ?? 0) > 5, 'down: uncached known hosts were asked for')
  t.same(Object.keys(down.uncached), ['503 CATALOG_UNAVAILABLE'], 'down: uncached known hosts got 503 CATALOG_UNAVAILABLE, every time')
  t.same(Object.keys(down.unknown), ['503 CATALOG_UNAVAILABLE'], 'down: unknown hosts got 503 CATALOG_UNAVAILABLE, never 404')
  t.same(Object.keys(down.readyz), ['503 CATALOG_UNAVAILABLE'], 'down: /readyz 503')
  t.same(Object.keys(down.healthz), ['200'], 'down: /healthz 200')

  const after = { cached: seen('recovered', 'cached'), uncached: seen('recovered', 'uncached'), unknown: seen('recovered', 'unknown'), readyz: seen('recovered', 'readyz') }
  t.same(Object.keys(after.cached), ['200'], 'after: cached tenants 200')
  t.same(Object.keys(after.uncached), ['200'], 'after: the previously uncached tenants 200')
  t.same(Object.keys(after.unknown), ['404 TENANT_NOT_FOUND'], 'after: unknown hosts 404 again')
  t.same(Object.keys(after.readyz), ['200'], 'after: /readyz 200')
})

t.test('after the outage nothing is left hanging', async (t) => {
  const stats = silo.pools.stats()
  t.equal(stats.leases, 0, 'no pool lease held')
  t.equal(stats.connections.pendingAcquires, 0, 'no request waits for a tenant connection')
})

t.test('an instance whose heartbeats fail past the lease opens no new connection on a budgeted server, and serves again by itself once the catalog is back', async (t) => {
  // An instance of its own, with a catalog database of its own on the same embedded server, so
  // that its `default` server can have a budget (the tenants above were cached without one).
  const config = testConfig({ CATALOG_DATABASE_URL: catalogServer.url, TENANT_ACQUIRE_TIMEOUT_MS: 1000 })
  const opened = closeInTeardown(t, config)
  // Teardowns run last first: the catalog is back before the instance closes, whatever failed.
  t.teardown(async () => { await catalogServer.start() })
  const cutOff = opened.silo = await openSilo(config)
  const cutOffApp = opened.app = await buildApp(cutOff, { config })
  await cutOff.catalog.knex('servers').where({ name: 'default' }).update({ connection_budget: 3 })
  const serverId = (await cutOff.catalog.servers.byName('default'))?.id ?? ''
  await createTenant(cutOff, 'echo')
  const get = async (): Promise<LightMyRequestResponse> => await cutOffApp.inject({ url: '/articles', headers: { host: 'echo.test' } })
  const budget = () => cutOff.pools.stats().servers.find((stats) => stats.server === 'default')
  const shares = async () => ({
    instances: await cutOff.catalog.knex('instances').select<Array<{ id: string, pid: number }>>('id', 'pid'),
    claims: await cutOff.catalog.knex('budget_claims').where({ server_id: serverId }).select<Array<{ instance_id: string, slots: number }>>('instance_id', 'slots')
  })
  const echoBackends = async (): Promise<number> => await countTenantBackends(cutOff, { slugs: ['echo'], applicationName: 'silo:%' })

  t.ok(await eventually(async () => (await shares()).claims.length === 1, 15_000, 100), 'a heartbeat claims a share of the newly budgeted server')
  const before = await shares()
  const instanceId = before.instances[0]?.id
  t.same(before.instances.map((instance) => instance.pid), [process.pid], 'one live instance in the catalog, this one')
  t.same(before.claims, [{ instance_id: instanceId, slots: 3 }], 'alone, it claims the whole budget')
  t.equal((await get()).statusCode, 200, 'the tenant serves')
  t.match(budget(), { capacity: 3, open: 1 }, 'on a connection of its share of 3')

  const failures: Error[] = []
  cutOff.events.on('budget:heartbeat', (event) => { failures.push(event.error) })
  const stopped = Date.now()
  await catalogServer.stop()
  // INSTANCE_LEASE_MS (10 s) is a constant, not an option: its end is waited for as it shows, the share gone.
  t.ok(await eventually(() => budget()?.capacity === 0, 60_000, 100), 'past the lease without a heartbeat, its share is withdrawn')
  t.comment(`withdrawn ${Date.now() - stopped} ms after the catalog stopped`)
  t.ok(failures.length > 0, `the failed heartbeats were reported (budget:heartbeat, ${failures.length} times)`)

  // Its idle connection there goes too (the others may already use its share): not left to serve on.
  t.ok(await eventually(async () => budget()?.open === 0 && await echoBackends() === 0, 15_000), 'its idle connection there is closed: it holds none')
  const refused = await get()
  t.match({ status: refused.statusCode, code: refused.json().code }, { status: 503, code: 'TENANT_BUSY' }, 'a request that needs a new connection there gets 503 TENANT_BUSY')
  t.ok(Number(refused.headers['retry-after']) >= 1, 'with Retry-After')
  t.match(budget(), { capacity: 0, open: 0 }, 'no slot was taken for it')
  t.equal(await echoBackends(), 0, 'and PostgreSQL saw no connection')

  await catalogServer.start()
  t.ok(await eventually(async () => (await get()).statusCode === 200, 30_000, 100), 'once the catalog is back, the tenant serves again by itself')
  t.equal(budget()?.capacity, 3, 'its share is back')
  const after = await shares()
  t.same(after.instances.map((instance) => instance.id), [instanceId], 'the same instance is the only one in the catalog')
  t.same(after.claims, [{ instance_id: instanceId, slots: 3 }], 'and claims the whole budget again')
})
