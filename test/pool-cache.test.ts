import t from './helpers/tap.js'
import { connect } from 'node:net'
import type { Knex } from 'knex'
import { countTenantBackends, countWaitingBackends, POOL_SESSIONS } from '../src/testing/backends.js'
import { createTenant, testApp } from './helpers/silo.js'
import { eventually, sleep } from './helpers/wait.js'

/** A route that holds its tenant connection for `ms`, optionally inside a transaction. */
const slowRoutes = (app: { get: (path: string, handler: (request: { db: Knex, query: unknown }) => Promise<unknown>) => unknown }): void => {
  app.get('/slow', async (request) => {
    const { ms, trx } = request.query as { ms?: string, trx?: string }
    const seconds = Number(ms ?? '300') / 1000
    if (trx === '1') {
      return await request.db.transaction(async (tx) => {
        await tx('articles').insert({ title: 'in trx', body: '' })
        await tx.raw('select pg_sleep(?)', [seconds])
        const rows = await tx('articles').where({ title: 'in trx' }).count<Array<{ count: string }>>('* as count')
        return { db: (await tx.raw('select current_database() as db')).rows[0].db, count: Number(rows[0]?.count) }
      })
    }
    await request.db.raw('select pg_sleep(?)', [seconds])
    return { db: (await request.db.raw('select current_database() as db')).rows[0].db }
  })
}

t.test('with one pool and requests alternating over three tenants, every answer is right', async (t) => {
  const { silo, app } = await testApp(t, { TENANT_POOLS_MAX: 1 })
  const slugs = ['acme', 'globex', 'initech']
  for (const slug of slugs) {
    await createTenant(silo, slug)
    await app.inject({ method: 'POST', url: '/articles', headers: { host: `${slug}.test` }, payload: { title: `${slug} article`, body: slug } })
  }
  let wrong = 0
  for (let round = 0; round < 10; round++) {
    for (const slug of slugs) {
      const res = await app.inject({ url: '/articles', headers: { host: `${slug}.test` } })
      const titles = (res.json().items as Array<{ title: string }>).map((a) => a.title)
      if (res.statusCode !== 200 || titles.length !== 1 || titles[0] !== `${slug} article`) wrong++
    }
  }
  t.equal(wrong, 0)
  const stats = silo.pools.stats()
  t.equal(stats.pools, 1, 'never more than one pool cached')
  t.ok(stats.evicted >= 29, `pools were evicted as tenants alternated (${stats.evicted})`)
  t.ok(await eventually(async () => silo.pools.stats().retiring === 0), 'every evicted pool was destroyed')
  t.ok(await eventually(async () => (await countTenantBackends(silo, { ...POOL_SESSIONS, slugs: ['acme', 'globex'] })) <= silo.config.tenantPoolMax),
    'evicted pools closed their connections')
})

t.test('50 concurrent first requests to one tenant open one pool within its connection limit', async (t) => {
  const { silo, app } = await testApp(t, { TENANT_POOL_MAX: 3 }, slowRoutes)
  await createTenant(silo, 'acme')
  const before = silo.pools.stats().opened
  let peak = 0
  const sampling = setInterval(() => { void countTenantBackends(silo, { ...POOL_SESSIONS, slugs: ['acme'] }).then((n) => { peak = Math.max(peak, n) }) }, 20)
  const responses = await Promise.all(Array.from({ length: 50 }, async () =>
    await app.inject({ url: '/slow?ms=20', headers: { host: 'acme.test' } })))
  clearInterval(sampling)
  t.equal(responses.filter((res) => res.statusCode !== 200).length, 0, 'all answered')
  t.equal(silo.pools.stats().opened - before, 1, 'one pool was created')
  t.equal(silo.pools.stats().pools, 1)
  t.ok(peak <= 3, `backends stayed within TENANT_POOL_MAX (peak ${peak})`)
  t.ok(peak >= 1, 'the sampler saw the pool at work')
})

t.test('evicting a pool while a slow query and a transaction run on it fails neither', async (t) => {
  const { silo, app } = await testApp(t, { TENANT_POOLS_MAX: 1 }, slowRoutes)
  await createTenant(silo, 'acme')
  await createTenant(silo, 'globex')
  const acme = await silo.catalog.tenantBySlug('acme')

  const slow = app.inject({ url: '/slow?ms=600', headers: { host: 'acme.test' } })
  const inTrx = app.inject({ url: '/slow?ms=600&trx=1', headers: { host: 'acme.test' } })
  t.ok(await eventually(async () => (await countTenantBackends(silo, { ...POOL_SESSIONS, slugs: ['acme'] })) >= 2), 'both queries are running')
  // Serving globex with room for one pool pushes acme's pool out while its queries run.
  t.equal((await app.inject({ url: '/articles', headers: { host: 'globex.test' } })).statusCode, 200)
  t.notOk(silo.pools.has(acme?.id ?? ''), 'acme pool was evicted')
  t.equal(silo.pools.stats().retiring, 1, 'and is retiring, not destroyed')

  const [slowRes, trxRes] = await Promise.all([slow, inTrx])
  t.equal(slowRes.statusCode, 200)
  t.same(slowRes.json(), { db: `${silo.config.tenantDbPrefix}acme` })
  t.equal(trxRes.statusCode, 200)
  t.same(trxRes.json(), { db: `${silo.config.tenantDbPrefix}acme`, count: 1 })
  t.ok(await eventually(async () => silo.pools.stats().retiring === 0), 'the retired pool is destroyed once its requests finished')
  t.ok(await eventually(async () => (await countTenantBackends(silo, { ...POOL_SESSIONS, slugs: ['acme'] })) === 0), 'and it left no connection behind')
  t.equal((await app.inject({ url: '/articles', headers: { host: 'acme.test' } })).json().items.length, 1, 'the transaction committed')
})

t.test('closing the cache waits for in-flight requests, then closes every pool', async (t) => {
  const { silo, app } = await testApp(t, {}, slowRoutes)
  await createTenant(silo, 'acme')
  const slow = app.inject({ url: '/slow?ms=300', headers: { host: 'acme.test' } })
  t.ok(await eventually(async () => (await countTenantBackends(silo, { ...POOL_SESSIONS, slugs: ['acme'] })) >= 1))
  const closing = silo.pools.close()
  t.equal((await slow).statusCode, 200, 'in-flight request finished')
  await closing
  t.same(silo.pools.stats().pools, 0)
  t.ok(await eventually(async () => (await countTenantBackends(silo, { ...POOL_SESSIONS, slugs: ['acme'] })) === 0))
  const refused = await app.inject({ url: '/articles', headers: { host: 'acme.test' } })
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'TENANT_UNAVAILABLE')
})

t.test('a client that leaves while its host is still being resolved leaves no lease behind', async (t) => {
  const { silo, app } = await testApp(t)
  await createTenant(silo, 'acme')
  await silo.syncCatalog()
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = new URL(address)

  // Hold the host look-up: the catalog's domains table is locked until we let go.
  const locker = await silo.catalog.knex.client.acquireConnection() as { query: (sql: string) => Promise<unknown> }
  t.teardown(async () => { await silo.catalog.knex.client.releaseConnection(locker) })
  await locker.query('begin')
  await locker.query('lock table domains in access exclusive mode')

  const clients = 5
  const sockets = Array.from({ length: clients }, () => connect(Number(port), '127.0.0.1'))
  for (const socket of sockets) {
    socket.on('error', () => {})
    socket.write('GET /articles HTTP/1.1\r\nHost: acme.test\r\n\r\n')
  }
  const blocked = async (): Promise<boolean> => await countWaitingBackends(silo.admin.knex, { database: silo.config.catalogDatabase, waitEventType: 'Lock' }) >= 1
  t.ok(await eventually(blocked), 'the look-up is waiting on the lock')
  // The clients go away while their tenant is being resolved; then the look-up completes.
  for (const socket of sockets) socket.destroy()
  await sleep(100)
  await locker.query('commit')

  t.ok(await eventually(async () => silo.pools.stats().opened >= 1), 'the look-up completed and the requests were admitted')
  t.ok(await eventually(async () => silo.pools.stats().leases === 0), `no lease is left held (${silo.pools.stats().leases})`)
  const res = await app.inject({ url: '/articles', headers: { host: 'acme.test' } })
  t.equal(res.statusCode, 200, 'the tenant is served afterwards')
  await app.close()
  const closed = await Promise.race([silo.pools.close().then(() => true), new Promise((resolve) => setTimeout(() => { resolve(false) }, 5000))])
  t.ok(closed, 'and closing the pools does not wait on a request that is gone')
})

t.test('a stream of tenants asked for once does not push out the pools of tenants asked for all the time', async (t) => {
  // Four slots: a window of one for newcomers, three in the main part.
  const { silo, app } = await testApp(t, { TENANT_POOLS_MAX: 4 })
  const hot = ['hot-a', 'hot-b', 'hot-c']
  const once = Array.from({ length: 6 }, (_, i) => `once-${i}`)
  for (const slug of [...hot, ...once]) await createTenant(silo, slug)
  const get = async (slug: string): Promise<string> => {
    const res = await app.inject({ url: '/articles', headers: { host: `${slug}.test` } })
    return res.statusCode === 200 ? slug : `${slug}: ${res.statusCode}`
  }
  for (let round = 0; round < 3; round++) for (const slug of hot) t.equal(await get(slug), slug)
  const opened = silo.pools.stats().opened
  for (const slug of once) t.equal(await get(slug), slug, `${slug} is served`)
  t.equal(silo.pools.stats().opened - opened, once.length, 'each newcomer got a pool of its own')
  const id = async (slug: string): Promise<string> => (await silo.catalog.tenantBySlug(slug))?.id ?? ''
  for (const slug of hot) t.ok(silo.pools.has(await id(slug)), `${slug} kept its pool`)
  const reopened = silo.pools.stats().opened
  for (const slug of hot) t.equal(await get(slug), slug)
  t.equal(silo.pools.stats().opened, reopened, 'the hot tenants are served from their pools, none opened again')
  t.ok(silo.pools.stats().pools <= 4, 'never more pools than the slots')
  t.ok(await eventually(async () => silo.pools.stats().retiring === 0), 'the newcomers pushed out were destroyed')
  t.ok(await eventually(async () => (await countTenantBackends(silo, { ...POOL_SESSIONS, slugs: once.slice(0, 4) })) === 0),
    'and their connections closed')
})
