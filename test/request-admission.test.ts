import t from './helpers/tap.js'
import type net from 'node:net'
import type { AddressInfo } from 'node:net'
import { lockArticles } from './helpers/locks.js'
import { firstAnswer, rawSocket, requestText } from './helpers/raw-http.js'
import { createTenant, testApp, testSilo } from './helpers/silo.js'
import { eventually } from './helpers/wait.js'

/** A raw client that sends `text` and keeps its socket: `answer` is the first chunk the server sends back. */
async function client (port: number, text: string): Promise<{ socket: net.Socket, answer: Promise<string> }> {
  const socket = await rawSocket(port)
  const answer = firstAnswer(socket)
  socket.write(text)
  return { socket, answer }
}

const token = 'admin-token-for-admission-0123456789'
const admin = { host: 'admin.localhost', authorization: `Bearer ${token}` }

const post = (title: string): string => requestText('POST', '/articles', 'acme.test', { title, body: '' })

t.test('past TENANT_REQUESTS_MAX a tenant\'s requests wait their turn, and one whose client leaves while it waits never runs', async (t) => {
  const { silo, app } = await testApp(t, { TENANT_POOL_MAX: 1, TENANT_REQUESTS_MAX: 2, TENANT_ACQUIRE_TIMEOUT_MS: 30000, ADMIN_TOKEN: token })
  await createTenant(silo, 'acme')
  await createTenant(silo, 'globex')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const lock = await lockArticles(t, silo.admin.knex, `${silo.config.tenantDbPrefix}acme`)

  // Two requests are served at once: one's insert waits on the lock holding the pool's one
  // connection, the other waits for that connection in the pool's own queue.
  const first = await client(port, post('admitted 1'))
  t.ok(await eventually(async () => await lock.waiting() === 1), 'the first request\'s insert waits on the lock')
  const second = await client(port, post('admitted 2'))
  t.ok(await eventually(async () => silo.pools.stats().leases === 2), 'two requests hold the pool')
  // Three more wait their turn, their clients will leave; a fourth waits behind them and stays.
  const leaving = [await client(port, post('left 1')), await client(port, post('left 2')), await client(port, post('left 3'))]
  t.ok(await eventually(async () => silo.pools.stats().waiting === 3), `three wait their turn (${silo.pools.stats().waiting})`)
  const staying = await client(port, post('after them'))
  t.ok(await eventually(async () => silo.pools.stats().waiting === 4), 'and the fourth behind them')
  t.equal(silo.pools.stats().leases, 2, 'none of them holds the pool')

  const globex = await app.inject({ method: 'GET', url: '/articles', headers: { host: 'globex.test' } })
  t.equal(globex.statusCode, 200, 'another tenant is served meanwhile')

  for (const { socket } of leaving) socket.destroy()
  t.ok(await eventually(async () => silo.pools.stats().waiting === 1), `the three whose clients left are out of the queue (${silo.pools.stats().waiting} waiting)`)
  t.same(silo.pools.stats().turns, { left: 3, timedOut: 0 }, 'and counted as having left before their turn')
  const stats = await app.inject({ url: '/stats', headers: admin })
  t.same(stats.json().turns, { waiting: 1, left: 3, timedOut: 0 }, 'GET /stats shows them')
  const metrics = (await app.inject({ url: '/metrics', headers: admin })).body
  t.match(metrics, /^silo_tenant_requests_waiting 1$/m, '/metrics too: the one waiting')
  t.match(metrics, /^silo_tenant_requests_left_waiting_total 3$/m, 'and the three that left')

  await lock.release()
  t.match(await first.answer, /^HTTP\/1\.1 201/, 'the first request is answered')
  t.match(await second.answer, /^HTTP\/1\.1 201/, 'the second too')
  t.match(await staying.answer, /^HTTP\/1\.1 201/, 'the one that waited behind the leavers gets its turn')
  t.ok(await eventually(async () => silo.pools.stats().leases === 0 && silo.pools.stats().waiting === 0), 'nothing is held or waits afterwards')

  const { rows } = await lock.client.query<{ title: string }>('select title from articles order by id')
  t.same(rows.map((row) => row.title).slice(0, 2).sort(), ['admitted 1', 'admitted 2'], 'the two served first wrote first')
  t.same(rows.map((row) => row.title).slice(2), ['after them'], 'then the one that stayed; the routes of those that left never ran')
  for (const { socket } of [first, second, staying]) socket.destroy()
})

t.test('a request whose turn does not come within TENANT_ACQUIRE_TIMEOUT_MS gets 503 TENANT_BUSY; the one ahead of it is unaffected', async (t) => {
  const { silo, app } = await testApp(t, { TENANT_POOL_MAX: 1, TENANT_REQUESTS_MAX: 1, TENANT_ACQUIRE_TIMEOUT_MS: 400 })
  await createTenant(silo, 'acme')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const lock = await lockArticles(t, silo.admin.knex, `${silo.config.tenantDbPrefix}acme`)
  const ahead = await client(port, post('ahead'))
  t.ok(await eventually(async () => await lock.waiting() === 1), 'the request ahead holds the pool, its insert waiting on the lock')

  const started = performance.now()
  const busy = await app.inject({ method: 'POST', url: '/articles', headers: { host: 'acme.test' }, payload: { title: 'too late', body: '' } })
  const waited = performance.now() - started
  t.equal(busy.statusCode, 503)
  t.equal(busy.json().code, 'TENANT_BUSY')
  t.equal(busy.headers['retry-after'], '1')
  t.ok(waited >= 350, `it waited its turn first (${waited.toFixed(0)} ms)`)
  t.equal(silo.pools.stats().waiting, 0, 'and is out of the queue')
  t.same(silo.pools.stats().turns, { left: 0, timedOut: 1 }, 'counted as a turn that did not come')

  await lock.release()
  t.match(await ahead.answer, /^HTTP\/1\.1 201/, 'the request ahead is answered')
  const { rows } = await lock.client.query<{ title: string }>('select title from articles order by id')
  t.same(rows.map((row) => row.title), ['ahead'])
  ahead.socket.destroy()
})

t.test('TENANT_REQUESTS_MAX=0 lets every request onto the pool at once', async (t) => {
  const { silo, app } = await testApp(t, { TENANT_POOL_MAX: 1, TENANT_REQUESTS_MAX: 0 })
  await createTenant(silo, 'acme')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const lock = await lockArticles(t, silo.admin.knex, `${silo.config.tenantDbPrefix}acme`)
  const clients = [await client(port, post('a')), await client(port, post('b')), await client(port, post('c'))]
  t.ok(await eventually(async () => silo.pools.stats().leases === 3), 'all three hold the pool')
  t.equal(silo.pools.stats().waiting, 0, 'none waits its turn')
  await lock.release()
  for (const { answer, socket } of clients) {
    t.match(await answer, /^HTTP\/1\.1 201/)
    socket.destroy()
  }
})

t.test('leases waiting their turn when the cache closes are refused with TENANT_UNAVAILABLE; one released before its turn never gets it', async (t) => {
  const silo = await testSilo(t, { TENANT_POOL_MAX: 1, TENANT_REQUESTS_MAX: 1 })
  await createTenant(silo, 'acme')
  const tenant = await silo.resolver.resolve('acme.test')
  if (tenant === null) throw new Error('acme is not resolved')
  const holder = silo.pools.acquire(tenant)
  t.ok(holder.admitted, 'the first lease is admitted at once')
  const released = silo.pools.acquire(tenant)
  const refused = silo.pools.acquire(tenant)
  t.notOk(released.admitted || refused.admitted, 'the next two wait')
  const outcomes: Array<Error | null | undefined | 'none'> = ['none', 'none']
  released.whenAdmitted((outcome) => { outcomes[0] = outcome })
  refused.whenAdmitted((outcome) => { outcomes[1] = outcome })
  released.release()
  t.equal(outcomes[0], null, 'a waiting lease released is told so (null), and leaves the queue')
  t.equal(silo.pools.stats().waiting, 1)
  t.same(silo.pools.stats().turns, { left: 1, timedOut: 0 })

  const closing = silo.pools.close()
  t.match(outcomes[1], { code: 'TENANT_UNAVAILABLE' }, 'the one still waiting is refused as the cache closes')
  t.equal(silo.pools.stats().waiting, 0)
  t.same(silo.pools.stats().turns, { left: 1, timedOut: 0 }, 'a lease refused at closing is not counted as a turn that timed out')
  holder.release()
  await closing
  t.notOk(released.admitted, 'the released one was never admitted')
})

t.test('a request whose turn comes while a move has frozen its tenant is held for the switch, and writes nothing to the source meanwhile', async (t) => {
  const { silo, app } = await testApp(t, { TENANT_POOL_MAX: 1, TENANT_REQUESTS_MAX: 1, TENANT_ACQUIRE_TIMEOUT_MS: 30000, MOVE_HOLD_MS: 30000 })
  await createTenant(silo, 'acme')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const lock = await lockArticles(t, silo.admin.knex, `${silo.config.tenantDbPrefix}acme`)
  const titles = async (): Promise<string[]> => (await lock.client.query<{ title: string }>('select title from articles order by id')).rows.map((row) => row.title)

  const first = await client(port, post('before the freeze'))
  t.ok(await eventually(async () => await lock.waiting() === 1), 'the first request\'s insert waits on the lock, holding the pool')
  const queued = await client(port, post('queued'))
  t.ok(await eventually(async () => silo.pools.stats().waiting === 1), 'the second waits its turn (its host resolved before the freeze)')
  const tenant = await silo.catalog.tenantBySlug('acme')
  if (tenant === null) throw new Error('acme is not in the catalog')
  t.ok(await silo.catalog.moves.freeze(tenant.id, 30000), 'a move freezes the tenant')
  t.ok(await eventually(async () => silo.resolver.peek('acme.test') === undefined), 'and the instance hears of it (the host\'s record is dropped from its cache)')

  await lock.release()
  t.match(await first.answer, /^HTTP\/1\.1 201/, 'the request already under way is answered')
  t.ok(await eventually(async () => silo.holds.waiting === 1), `the queued one, its turn come, is held for the switch (${silo.holds.waiting} held)`)
  t.equal(silo.pools.stats().leases, 0, 'holding no lease')
  t.same(await titles(), ['before the freeze'], 'and having written nothing')

  await silo.catalog.moves.unfreeze(tenant.id)
  t.match(await queued.answer, /^HTTP\/1\.1 201/, 'once the freeze is lifted it is served')
  t.same(await titles(), ['before the freeze', 'queued'])
  t.ok(await eventually(async () => silo.pools.stats().leases === 0 && silo.holds.waiting === 0), 'nothing is held afterwards')
  for (const { socket } of [first, queued]) socket.destroy()
})
