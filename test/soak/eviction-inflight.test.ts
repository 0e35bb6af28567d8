/**
 * Soak: eviction under in-flight work. Slow queries and open transactions run on many tenants
 * while fast requests on other tenants keep pushing their pools out of a 2-pool cache. No request
 * may fail, every transaction must commit its rows, and once the work is done no connection may
 * be left behind: no retiring pool, the budget back to what the cached pools hold, and
 * PostgreSQL showing backends only for the cached pools' databases.
 *
 * Size: SOAK_SCALE (default 1): waves of slow work, 4 x scale.
 *   CI size (default, SOAK_SCALE=1): 4 waves over 6 slow and 6 fast tenants, 15-35 s on a busy 2-core machine.
 *   Full size (SOAK_SCALE=10): 40 waves, a minute or two:
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres SOAK_SCALE=10 npx tap --timeout=1800 dist/test/soak/eviction-inflight.test.js (after npm run build:test)
 */
import t from '../helpers/tap.js'
import type { FastifyInstance } from 'fastify'
import { testApp } from '../helpers/silo.js'
import { POOL_SESSIONS, tenantBackendsByDatabase } from '../../src/testing/backends.js'
import { createTenants, listen, soakScale, withTenantDatabase, type HttpResponse } from '../helpers/soak.js'
import { eventually, sleep } from '../helpers/wait.js'

const scale = soakScale()
const WAVES = Math.max(1, Math.round(4 * scale))
const SLOW_TENANTS = 6
const FAST_TENANTS = 6
const FAST_CLIENTS = 4
const POOLS_MAX = 2
const POOL_MAX = 2

/** Requests on a slow route right now, by tenant: an eviction of that tenant's pool meanwhile hits in-flight work. */
const inflight = new Map<string, number>()

/**
 * A query that holds its connection for `ms` (sleep), or a transaction that writes, holds its
 * connection for `ms` between and after its writes, then commits (trx).
 */
const slowRoute = (app: FastifyInstance): void => {
  app.get('/soak/slow', async (request) => {
    const { ms, mode, tag } = request.query as { ms?: string, mode?: string, tag?: string }
    const seconds = Number(ms ?? '300') / 1000
    const slug = request.tenant.slug
    inflight.set(slug, (inflight.get(slug) ?? 0) + 1)
    try {
      if (mode === 'trx') {
        return await request.db.transaction(async (tx) => {
          const [first] = await tx('articles').insert({ title: `<<${slug}>> trx ${tag ?? ''} first`, body: '' }).returning('id')
          await tx.raw('select pg_sleep(?)', [seconds / 2])
          const [second] = await tx('articles').insert({ title: `<<${slug}>> trx ${tag ?? ''} second`, body: '' }).returning('id')
          await tx.raw('select pg_sleep(?)', [seconds / 2])
          const { rows } = await tx.raw('select current_database() as db')
          return { db: rows[0].db as string, ids: [Number(first?.id), Number(second?.id)] }
        })
      }
      const { rows } = await request.db.raw('select pg_sleep(?), current_database() as db', [seconds])
      return { db: rows[0].db as string }
    } finally {
      inflight.set(slug, (inflight.get(slug) ?? 1) - 1)
    }
  })
}

t.test(`${WAVES} waves of slow queries and transactions on ${SLOW_TENANTS} tenants, evicted by fast traffic: nothing fails, nothing leaks`, async (t) => {
  const { silo, app } = await testApp(t, {
    TENANT_POOLS_MAX: POOLS_MAX,
    TENANT_POOL_MAX: POOL_MAX,
    // Room for every slow request at once plus the fast ones: what is tested is eviction, not queuing.
    CONNECTION_BUDGET: SLOW_TENANTS * 2 + 8,
    TENANT_ACQUIRE_TIMEOUT_MS: 30000,
    HOST_CACHE_TTL_MS: 600000
  }, slowRoute)
  const slow = Array.from({ length: SLOW_TENANTS }, (_, i) => `slow-${i}`)
  const fast = Array.from({ length: FAST_TENANTS }, (_, i) => `fast-${i}`)
  await createTenants(silo, [...slow, ...fast])
  /** Database name by tenant id and by slug. */
  const databaseOf = new Map<string, string>()
  for (const slug of [...slow, ...fast]) {
    const tenant = await silo.catalog.tenantBySlug(slug)
    if (tenant === null) throw new Error(`no tenant ${slug}`)
    databaseOf.set(tenant.id, tenant.database.name)
    databaseOf.set(slug, tenant.database.name)
  }
  const http = await listen(t, app, SLOW_TENANTS * 2 + FAST_CLIENTS + 4)

  let evictedUnderWork = 0
  let evictions = 0
  silo.events.on('pool:evicted', ({ slug }) => {
    evictions++
    if ((inflight.get(slug) ?? 0) > 0) evictedUnderWork++
  })
  let peakRetiring = 0
  const sampler = setInterval(() => { peakRetiring = Math.max(peakRetiring, silo.pools.stats().retiring) }, 10)
  t.teardown(() => { clearInterval(sampler) })

  const failures: string[] = []
  const fail = (what: string, res: HttpResponse | Error): void => {
    failures.push(res instanceof Error ? `${what}: ${res.message}` : `${what}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`)
  }
  const send = async (slug: string, path: string, method = 'GET', payload?: unknown): Promise<HttpResponse | undefined> => {
    try {
      return await http.send(method, path, `${slug}.test`, payload)
    } catch (error) {
      fail(`${slug} ${method} ${path}`, error as Error)
      return undefined
    }
  }

  const committed = new Map<string, number[]>(slow.map((slug) => [slug, []]))
  const fastWrites = new Map<string, number>(fast.map((slug) => [slug, 0]))
  const counts = { sleeps: 0, transactions: 0, fast: 0, cutShort: 0 }
  const started = Date.now()

  for (let wave = 0; wave < WAVES; wave++) {
    const slowWork = slow.flatMap((slug) => (['sleep', 'trx'] as const).map(async (mode) => {
      // Staggered starts and lengths, so evictions land before, during and after each step of the work.
      await sleep(Math.random() * 150)
      const ms = 300 + Math.floor(Math.random() * 400)
      const began = Date.now()
      const res = await send(slug, `/soak/slow?ms=${ms}&mode=${mode}&tag=w${wave}`)
      if (res === undefined) return
      const body = res.body as { db?: string, ids?: number[] }
      if (res.status !== 200 || body.db !== databaseOf.get(slug)) return fail(`${slug} slow ${mode}`, res)
      if (Date.now() - began < ms - 20) counts.cutShort++
      if (mode === 'trx') {
        counts.transactions++
        committed.get(slug)?.push(...(body.ids ?? []))
      } else {
        counts.sleeps++
      }
    }))
    const phase = { slowDone: false }
    const slowFinished = Promise.all(slowWork).then(() => { phase.slowDone = true })
    // Fast traffic on other tenants while the slow work runs: each request wants a pool of its own,
    // and with room for 2 the pools holding the slow work are pushed out of the cache.
    const fastTraffic = Array.from({ length: FAST_CLIENTS }, async (_, client) => {
      for (let i = client; !phase.slowDone; i++) {
        const slug = fast[i % fast.length] as string
        const write = i % 3 === 0
        const res = write
          ? await send(slug, '/articles', 'POST', { title: `<<${slug}>> fast ${wave}-${i}`, body: '' })
          : await send(slug, '/articles?limit=5')
        counts.fast++
        if (res === undefined) continue
        if (res.status !== (write ? 201 : 200)) fail(`${slug} fast`, res)
        else if (write) fastWrites.set(slug, (fastWrites.get(slug) ?? 0) + 1)
      }
    })
    await Promise.all([slowFinished, ...fastTraffic])
  }
  const elapsed = Date.now() - started
  clearInterval(sampler)

  // Every committed transaction left both its rows; nothing else landed in a slow tenant.
  const checking = Date.now()
  let missingRows = 0
  let strayRows = 0
  for (const slug of slow) {
    const ids = new Set(committed.get(slug))
    const rows = await withTenantDatabase(silo, slug, async (db) => await db('articles').select<Array<{ id: number, title: string }>>('id', 'title'))
    const found = new Set(rows.map((row) => Number(row.id)))
    for (const id of ids) if (!found.has(id)) missingRows++
    strayRows += rows.filter((row) => !ids.has(Number(row.id)) || !row.title.startsWith(`<<${slug}>> trx `)).length
  }
  let lostFastWrites = 0
  for (const slug of fast) {
    const [row] = await withTenantDatabase(silo, slug, async (db) => await db('articles').count<Array<{ n: string }>>('* as n'))
    lostFastWrites += Math.abs((fastWrites.get(slug) ?? 0) - Number(row?.n))
  }

  const readBackMs = Date.now() - checking
  // Afterwards: every retired pool destroyed, and the connections left are exactly the cached pools'.
  const settling = Date.now()
  const drained = await eventually(() => { const s = silo.pools.stats(); return s.retiring === 0 && s.leases === 0 })
  let backends = new Map<string, number>()
  const cachedDatabases = (): Set<string> => new Set(silo.pools.keys().map((id) => databaseOf.get(id) ?? id))
  const settled = await eventually(async () => {
    backends = await tenantBackendsByDatabase(silo, POOL_SESSIONS)
    const stats = silo.pools.stats()
    const total = [...backends.values()].reduce((a, b) => a + b, 0)
    const cached = cachedDatabases()
    return stats.budget.open === stats.connections.used + stats.connections.free &&
      total === stats.budget.open && [...backends.keys()].every((db) => cached.has(db))
  })
  const settleMs = Date.now() - settling
  const stats = silo.pools.stats()
  const cached = cachedDatabases()
  const strayBackends = [...backends].filter(([db]) => !cached.has(db)).reduce((sum, [, n]) => sum + n, 0)
  const totalBackends = [...backends.values()].reduce((a, b) => a + b, 0)

  t.comment(`waves ${WAVES} in ${elapsed} ms: ${counts.sleeps} slow queries, ${counts.transactions} transactions, ${counts.fast} fast requests`)
  t.comment(`evictions ${evictions}, of pools with slow work in flight ${evictedUnderWork}; peak retiring pools ${peakRetiring}`)
  t.comment(`rows committed by transactions ${[...committed.values()].reduce((n, ids) => n + ids.length, 0)}, missing ${missingRows}, stray ${strayRows}; fast writes lost ${lostFastWrites}`)
  t.comment(`read back in ${readBackMs} ms; connections settled in ${settleMs} ms`)
  t.comment(`afterwards: pools ${stats.pools}, retiring ${stats.retiring}, leases ${stats.leases}, budget open ${stats.budget.open}, pool connections ${stats.connections.used + stats.connections.free}, backends ${totalBackends} (${strayBackends} on databases without a cached pool)`)
  for (const failure of failures.slice(0, 10)) t.comment(`failed: ${failure}`)

  t.equal(failures.length, 0, 'no request failed')
  t.equal(counts.sleeps + counts.transactions, WAVES * SLOW_TENANTS * 2, 'every slow request answered from its own tenant database')
  t.equal(counts.cutShort, 0, 'no slow query was cut short')
  t.equal(missingRows, 0, 'every transaction committed both its rows')
  t.equal(strayRows, 0, 'and nothing else is in the slow tenants\' databases')
  t.equal(lostFastWrites, 0, 'every fast write landed')
  t.ok(evictedUnderWork >= WAVES, `pools were evicted while slow work ran on them (${evictedUnderWork} times)`)
  t.ok(peakRetiring >= 2, `several retired pools were kept alive by their in-flight work at once (peak ${peakRetiring})`)
  t.ok(drained, 'every retired pool was destroyed once its work finished, and no lease is left')
  t.ok(settled, 'the budget, the cached pools and PostgreSQL agree on the connections left')
  t.equal(stats.retiring, 0, 'no pool retiring')
  t.equal(stats.budget.open, stats.connections.used + stats.connections.free, 'the budget counts exactly the cached pools\' connections')
  t.equal(strayBackends, 0, 'PostgreSQL has no backend on a database whose pool was evicted')
  t.equal(totalBackends, stats.budget.open, 'and as many backends as the budget counts')
  t.ok(totalBackends <= POOLS_MAX * POOL_MAX, `no more backends than ${POOLS_MAX} pools of ${POOL_MAX} can hold (${totalBackends})`)
})
