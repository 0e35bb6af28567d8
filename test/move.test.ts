// Moving a tenant between servers while it serves: two real servers (DATABASE_URL's, registered
// as `default`, and an embedded one of this file's own), two instances serving the tenant, and a
// write load on it throughout the move.
import t from './helpers/tap.js'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import type { Silo } from '../src/silo.js'
import { secondServer } from './helpers/servers.js'
import { diagnose, planRepair, repair } from '../src/lifecycle/doctor.js'
import { anotherInstance, createTenant, testApp } from './helpers/silo.js'
import { eventually } from './helpers/wait.js'

const token = 'move-test-admin-token-0123456789'
const admin = { host: 'admin.localhost', authorization: `Bearer ${token}` }
const { silo, app } = await testApp(t, { MOVE_HOLD_MS: 3000, ADMIN_TOKEN: token }, (app) => {
  app.get('/test/port', async (request) => (await request.db.raw<{ rows: Array<{ port: number }> }>('select inet_server_port() as port')).rows[0])
})
const other = await anotherInstance(t, silo.config)
const second = await secondServer(t)
await silo.serverRegistry.add({ name: 'second', url: second.url })
const secondPort = Number(new URL(second.url).port)

const databaseOn = async (url: string, name: string): Promise<boolean> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1
  } finally {
    await client.end()
  }
}

/** POSTs articles to the tenant through both instances, one after another on each, until stopped; every acknowledged title is kept. */
function writeLoad (host: string, instances: FastifyInstance[]): { stop: () => Promise<{ acknowledged: string[], failed: Array<{ status: number, code?: string, message?: string }> }> } {
  const acknowledged: string[] = []
  const failed: Array<{ status: number, code?: string, message?: string }> = []
  const state = { running: true }
  let n = 0
  const writers = instances.flatMap((instance, i) => [0, 1].map(async (w) => {
    while (state.running) {
      const title = `load ${i}-${w}-${n++}`
      const response = await instance.inject({ method: 'POST', url: '/articles', headers: { host }, payload: { title, body: 'x'.repeat(200) } })
      if (response.statusCode === 201) acknowledged.push(title)
      else failed.push({ status: response.statusCode, ...(response.json() as { code?: string, message?: string }) })
    }
  }))
  return {
    stop: async () => {
      state.running = false
      await Promise.all(writers)
      return { acknowledged, failed }
    }
  }
}

t.test('a tenant moves under a write load served by two instances: every acknowledged write is at the destination exactly once, and both instances serve from it', async (t) => {
  await createTenant(silo, 'mover', { seed: true })
  const host = 'mover.test'
  await silo.withTenant('mover', async (db) => {
    await db.raw('insert into articles (title, body) select \'bulk \' || g, repeat(\'y\', 500) from generate_series(1, 3000) g')
  })
  const before = await silo.withTenant('mover', async (db) => await db('articles').count<Array<{ count: string }>>('* as count'))
  const initial = Number(before[0]?.count)
  const evictions: string[] = []
  silo.events.on('pool:evicted', ({ slug, reason }) => { if (slug === 'mover') evictions.push(reason) })
  const load = writeLoad(host, [app, other.app])
  await new Promise((resolve) => setTimeout(resolve, 200))
  const move = await silo.mover.move('mover', { to: 'second' })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const { acknowledged, failed } = await load.stop()
  t.equal(move.phase, 'done')
  t.ok(acknowledged.length > 20, `writes went on through the move (${acknowledged.length} acknowledged, ${failed.length} failed: ${JSON.stringify(failed.slice(0, 3))})`)
  t.same(failed.filter((failure) => failure.status !== 503), [], 'a write that failed was refused as unavailable (503, to retry), never lost as a 500')
  t.ok(move.freezeMs !== null && move.freezeMs < 3000, `the freeze was short (${move.freezeMs} ms)`)

  t.ok(evictions.length > 0 && evictions.every((reason) => reason === 'removed'), `the pool on the source was retired as removed, never counted as an LRU eviction (${evictions.join(', ')})`)
  const tenant = await silo.catalog.tenantBySlug('mover')
  t.equal(tenant?.server.name, 'second', 'the catalog has it on the second server')
  const rows = await silo.withTenant('mover', async (db) => await db('articles').select('title'))
  const titles = rows.map((row: { title: string }) => row.title)
  const counts = new Map<string, number>()
  for (const title of titles) counts.set(title, (counts.get(title) ?? 0) + 1)
  t.same([...counts].filter(([, count]) => count > 1), [], 'no row twice')
  t.same(acknowledged.filter((title) => counts.get(title) !== 1), [], 'every acknowledged write is there once')
  t.ok(titles.length >= initial + acknowledged.length, 'and every earlier row')
  for (const instance of [app, other.app]) {
    const response = await instance.inject({ url: '/test/port', headers: { host } })
    if (instance === app) t.equal(response.json().port, secondPort, 'this instance serves it from the second server')
    const read = await instance.inject({ url: '/articles?limit=1', headers: { host } })
    t.equal(read.statusCode, 200)
  }
  const ported = await other.app.inject({ url: '/articles?limit=100', headers: { host } })
  t.equal(ported.statusCode, 200, 'the other instance serves it too')
  t.notOk(await databaseOn(silo.config.databaseUrl ?? '', tenant?.database.name ?? ''), 'the source database is gone')
  const next = await app.inject({ method: 'POST', url: '/articles', headers: { host }, payload: { title: 'after', body: 'b' } })
  t.equal(next.statusCode, 201)
  const maxId = await silo.withTenant('mover', async (db) => await db('articles').max<Array<{ max: string }>>('id as max'))
  t.equal(String(next.json().id), String(maxId[0]?.max), 'the identity counter went on past the copied rows')
  const seen = await other.app.inject({ url: `/articles/${String(next.json().id)}`, headers: { host } })
  t.equal(seen.statusCode, 200, 'the other instance reads a row written on the target after the switch')
})

t.test('the admin API starts a move at once and reports its progress; refusals answer with their code', async (t) => {
  await silo.provisioner.create({ slug: 'via-api', domains: ['via-api.test'], seed: true, server: 'default' })
  const unauthorized = await app.inject({ method: 'POST', url: '/tenants/via-api/move', headers: { host: admin.host }, payload: { to: 'second' } })
  t.equal(unauthorized.statusCode, 401)
  const refusals: Array<[object, number, string]> = [
    [{ to: 'nowhere' }, 404, 'SERVER_NOT_FOUND'],
    [{ to: 'default' }, 409, 'MOVE_REFUSED'],
    [{ to: 'Bad Name' }, 400, 'VALIDATION_FAILED'],
    [{ to: 'second', extra: 1 }, 400, 'VALIDATION_FAILED']
  ]
  for (const [payload, status, code] of refusals) {
    const refused = await app.inject({ method: 'POST', url: '/tenants/via-api/move', headers: admin, payload })
    t.equal(refused.statusCode, status, `${JSON.stringify(payload)}: ${refused.body}`)
    t.equal(refused.json().code, code)
  }
  t.equal((await app.inject({ method: 'POST', url: '/tenants/nobody/move', headers: admin, payload: { to: 'second' } })).json().code, 'TENANT_NOT_FOUND')
  const started = await app.inject({ method: 'POST', url: '/tenants/via-api/move', headers: admin, payload: { to: 'second', keepSource: true } })
  t.equal(started.statusCode, 202, started.body)
  const move = started.json()
  t.match(move, { slug: 'via-api', from: 'default', to: 'second', keepSource: true, phase: 'preparing' })
  t.equal(started.headers.location, `/moves/${String(move.id)}`)
  let last: { phase?: string } = {}
  t.ok(await eventually(async () => {
    last = (await app.inject({ url: `/moves/${String(move.id)}`, headers: admin })).json()
    return last.phase === 'done' || last.phase === 'failed'
  }, 60000, 20), 'the move ends')
  t.match(last, { phase: 'done', rowsCopied: 5, error: null, freezeMs: Number, finishedAt: String })
  const listed = await app.inject({ url: '/tenants/via-api/moves', headers: admin })
  t.same(listed.json().items.map((item: { id: string }) => item.id), [move.id])
  t.equal((await app.inject({ url: '/moves/00000000-0000-4000-8000-000000000000', headers: admin })).statusCode, 404)
  t.equal((await app.inject({ url: '/moves/not-a-uuid', headers: admin })).statusCode, 400)
  t.equal((await app.inject({ url: '/tenants/nobody/moves', headers: admin })).json().code, 'TENANT_NOT_FOUND')
  t.equal((await app.inject({ url: '/articles', headers: { host: 'via-api.test' } })).json().items.length, 5, 'it serves from second')

  // --keep-source: the source stays, closed to connections, and doctor treats it as an orphan it may drop.
  const name = `${silo.config.tenantDbPrefix}via_api`
  const kept = await sourceState(name)
  t.same(kept, { exists: true, allowsConnections: false, role: true }, 'the source is kept, closed to connections')
  const deps = { catalog: silo.catalog, servers: silo.servers, provisioner: silo.provisioner, prefix: silo.config.tenantDbPrefix }
  const report = await diagnose(deps)
  t.ok(report.orphanDatabases.includes(name) && report.orphanRoles.includes(name), 'doctor lists the kept source')
  await repair(deps, planRepair(report), { confirmed: true })
  t.same(await sourceState(name), { exists: false, allowsConnections: false, role: false }, 'and --fix --yes drops it')
  t.equal((await app.inject({ url: '/articles', headers: { host: 'via-api.test' } })).statusCode, 200, 'the tenant still serves')
})

async function sourceState (name: string): Promise<{ exists: boolean, allowsConnections: boolean, role: boolean }> {
  const client = new pg.Client({ connectionString: silo.config.databaseUrl })
  await client.connect()
  try {
    const database = (await client.query<{ allow: boolean }>('select datallowconn as allow from pg_database where datname = $1', [name])).rows[0]
    const role = (await client.query('select 1 from pg_roles where rolname = $1', [name])).rowCount === 1
    return { exists: database !== undefined, allowsConnections: database?.allow ?? false, role }
  } finally {
    await client.end()
  }
}

export type { Silo }
