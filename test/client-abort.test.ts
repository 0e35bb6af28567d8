import t from './helpers/tap.js'
import type net from 'node:net'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { connectionFromUrl } from '../src/db/knex-config.js'
import { lockArticles, openConnections } from './helpers/locks.js'
import { firstAnswer, rawSocket, requestText } from './helpers/raw-http.js'
import { createTenant, databaseUrl, testApp } from './helpers/silo.js'
import { eventually } from './helpers/wait.js'

/** A route that writes twice: its second query starts only after the first, which the lock holds. */
const twiceRoute = (app: FastifyInstance): void => {
  app.post('/twice', async (request) => {
    await request.db('articles').insert({ title: 'twice: first', body: '' })
    await request.db('articles').insert({ title: 'twice: second', body: '' })
    return { ok: true }
  })
}

t.test('clients that leave after their body, while their query waits, give their pool lease back once the route is done', async (t) => {
  const { silo, app } = await testApp(t, { TENANT_POOLS_MAX: 1, TENANT_POOL_MAX: 10, CONNECTION_BUDGET: 20 }, twiceRoute)
  await createTenant(silo, 'acme')
  await createTenant(silo, 'globex')
  const created = await app.inject({ method: 'POST', url: '/articles', headers: { host: 'acme.test' }, payload: { title: 'original', body: '' } })
  t.equal(created.statusCode, 201)
  const id = Number(created.json().id)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo

  const lock = await lockArticles(t, silo.admin.knex, `${silo.config.tenantDbPrefix}acme`)
  const sockets: net.Socket[] = []
  const send = async (text: string): Promise<net.Socket> => {
    const socket = await rawSocket(port)
    sockets.push(socket)
    socket.write(text)
    return socket
  }
  // Each of these sends its whole request, body included, and will leave before the answer.
  await send(requestText('POST', '/articles', 'acme.test', { title: 'posted, client gone', body: '' }))
  await send(requestText('PATCH', `/articles/${id}`, 'acme.test', { title: 'patched, client gone' }))
  await send(requestText('POST', '/twice', 'acme.test', {}))
  // Two requests pipelined on one connection: the second one's response waits behind the first's.
  await send(requestText('POST', '/articles', 'acme.test', { title: 'pipelined 1', body: '' }) +
    requestText('POST', '/articles', 'acme.test', { title: 'pipelined 2', body: '' }))
  // A kept-alive connection: one request answered, then a POST whose client leaves.
  const keptAlive = await send(requestText('GET', '/tenant', 'acme.test'))
  t.match(await firstAnswer(keptAlive), /^HTTP\/1\.1 200/, 'the kept-alive connection was served once')
  keptAlive.write(requestText('POST', '/articles', 'acme.test', { title: 'kept alive, client gone', body: '' }))
  // A GET that leaves mid-query (the case Fastify's onRequestAbort already saw).
  await send(requestText('GET', '/articles', 'acme.test'))
  const BLOCKED = 7
  t.ok(await eventually(async () => await lock.waiting() === BLOCKED), `${BLOCKED} queries wait on the lock (${await lock.waiting()})`)
  // A client that leaves half-way through its body never reaches its route.
  const partial = await send('POST /articles HTTP/1.1\r\nHost: acme.test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"title":')

  // Its pool is leased only once the body is in (preHandler), so it holds none.
  t.ok(await eventually(async () => silo.pools.stats().leases === BLOCKED), 'every request whose route runs holds a lease; the half-sent one holds none')
  for (const socket of sockets) socket.destroy()
  t.ok(await eventually(async () => await openConnections(app) === 0), 'the server saw every client leave')
  t.ok(partial.destroyed)
  // Another tenant's request pushes acme's pool out of the cache (room for one) while its queries wait.
  t.equal((await app.inject({ url: '/tenant', headers: { host: 'globex.test' } })).statusCode, 200)
  t.equal(silo.pools.stats().retiring, 1, 'acme\'s pool is retired, kept alive by the requests still running on it')
  // The half-sent request was answered (to nobody) with a 400; the others keep their leases while
  // their routes run, so the retired pool lives on under their queries.
  t.ok(await eventually(async () => silo.pools.stats().leases === BLOCKED), `the leases of the routes still running are held (${silo.pools.stats().leases})`)

  await lock.release()
  t.ok(await eventually(async () => silo.pools.stats().leases === 0), `every lease is given back once the routes are done (${silo.pools.stats().leases} left)`)
  t.ok(await eventually(async () => silo.pools.stats().retiring === 0), `and the retired pool is destroyed (${silo.pools.stats().retiring} retiring)`)

  const { rows } = await lock.client.query<{ title: string }>('select title from articles order by id')
  t.same(rows.map((row) => row.title).sort(), [
    'kept alive, client gone', 'patched, client gone', 'pipelined 1', 'pipelined 2', 'posted, client gone', 'twice: first', 'twice: second'
  ], 'every route whose client left finished its work, the second query of /twice included, on the retired pool')

  await app.close()
  const closed = await Promise.race([
    silo.close().then(() => 'closed'),
    new Promise<string>((resolve) => { setTimeout(() => { resolve('still waiting after 20 s') }, 20000).unref() })
  ])
  t.equal(closed, 'closed', 'silo.close() does not wait on requests whose clients are gone')
})

t.test('a client that leaves while its host is still being looked up, its body sent, leaves no lease behind', async (t) => {
  const { silo, app } = await testApp(t, { TENANT_POOLS_MAX: 2 })
  await createTenant(silo, 'acme')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  // The catalog's tenants table, locked: the look-up of a host not yet cached waits in PostgreSQL
  // until the test lets go, so the client is certainly gone before the tenant is known.
  const catalog = new pg.Client({ ...connectionFromUrl(databaseUrl(), silo.config.catalogDatabase), application_name: 'client-abort-test-locker' })
  await catalog.connect()
  t.teardown(async () => { await catalog.end().catch(() => {}) })
  await catalog.query('begin')
  await catalog.query('lock table tenants in access exclusive mode')

  const socket = await rawSocket(port)
  const closed = new Promise<void>((resolve) => { socket.once('close', () => { resolve() }) })
  socket.write(requestText('POST', '/articles', 'acme.test', { title: 'sent, client gone before its host was known', body: '' }))
  t.ok(await eventually(async () => await openConnections(app) === 1), 'the request reached the server')
  socket.destroy()
  await closed
  t.ok(await eventually(async () => await openConnections(app) === 0), 'the server saw the client leave')
  await catalog.query('commit')

  // The look-up now answers and the request is admitted for acme, but its body will never come.
  t.ok(await eventually(async () => silo.resolver.cached('acme.test') != null), 'the host was resolved after the client left')
  t.ok(await eventually(async () => silo.pools.stats().leases === 0), `no lease is held for the request whose client left (${silo.pools.stats().leases})`)
  const served = await app.inject({ method: 'GET', url: '/articles', headers: { host: 'acme.test' } })
  t.equal(served.statusCode, 200, 'the tenant is served as usual')
  t.equal(silo.pools.stats().leases, 0, 'and its lease given back')
  await app.close()
  const closedSilo = await Promise.race([
    silo.close().then(() => 'closed'),
    new Promise<string>((resolve) => { setTimeout(() => { resolve('still waiting after 20 s') }, 20000).unref() })
  ])
  t.equal(closedSilo, 'closed', 'silo.close() does not wait on it')
})
