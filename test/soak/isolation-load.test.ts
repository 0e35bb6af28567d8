/**
 * Soak: isolation under load. Concurrent mixed reads and writes over many tenants through a real
 * listening server, with a pool cache far too small for them (5 pools of 2 connections, a budget
 * of 8), so pools are evicted all the time. Every write carries its tenant's marker; afterwards
 * every tenant database is read directly: no row of another tenant, no lost or resurrected row,
 * no request failed. One request in ten comes from a client that sends a POST or PATCH, body and
 * all, and leaves without its answer (at once, or a few milliseconds later, mid-query): once the
 * load is over no lease is left and no pool is still retiring, and what those writes did is one of
 * the two outcomes a client that left cannot tell apart (done or not done).
 *
 * Size: SOAK_SCALE (default 1). Tenants min(50, 12 x scale), requests 600 x scale.
 *   CI size (default, SOAK_SCALE=1): 12 tenants, 600 requests, 20-45 s on a busy 2-core machine.
 *   Full size (SOAK_SCALE=10): 50 tenants, 6,000 requests, about 5 minutes:
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres SOAK_SCALE=10 npx tap --timeout=1800 dist/test/soak/isolation-load.test.js (after npm run build:test)
 * Most requests here open a PostgreSQL connection (the pool they need was just evicted), and a
 * backend start costs 10-150 ms of a small machine's CPU: that, not Silo, sets the pace, so CI
 * runs fewer requests. CI also uses 12 tenants, not 50: every DROP DATABASE in the teardown forces
 * a checkpoint (about a second each on a busy server). 12 tenants for 5 pools still means that
 * most tenant switches evict a pool.
 */
import t from '../helpers/tap.js'
import type { AddressInfo } from 'node:net'
import { abandonRequest, requestText } from '../helpers/raw-http.js'
import { testApp } from '../helpers/silo.js'
import { countTenantBackends, POOL_SESSIONS } from '../../src/testing/backends.js'
import { createTenants, listen, median, percentile, soakScale, withTenantDatabase, type HttpResponse } from '../helpers/soak.js'
import { eventually } from '../helpers/wait.js'

const scale = soakScale()
/** Tenants that get half of the traffic (real traffic is skewed); the rest share the other half. */
const HOT = 3
const TENANTS = Math.max(HOT + 2, Math.min(50, Math.round(12 * scale)))
const REQUESTS = Math.round(600 * scale)
const CLIENTS = 16
const POOLS_MAX = 5

interface ArticleBody { id: number, title: string, body: string }

/** What each tenant's database must hold when the run is over, built from the answers it gave. */
interface TenantModel {
  slug: string
  host: string
  /** Live articles not currently used by a request: id → the title and body last written. */
  idle: Map<number, { title: string, body: string }>
  /** Live articles a request is working on right now (so no two requests race on one id). */
  busy: Map<number, { title: string, body: string }>
  deleted: number[]
  writes: number
  /** Titles of POSTs whose client left: each may or may not be in the database. */
  abandonedPosts: Set<string>
  /** Articles a client left while changing: each holds either its content before or the one sent. */
  uncertain: Map<number, Array<{ title: string, body: string }>>
}

const marker = (slug: string): string => `<<${slug}>>`
/** Every marker in a text: a row is the tenant's own only if all of them name that tenant. */
const markersIn = (text: string): string[] => [...text.matchAll(/<<([a-z0-9-]+)>>/g)].map((match) => match[1] ?? '')
const carriesOnly = (slug: string, ...texts: string[]): boolean => {
  const found = texts.flatMap(markersIn)
  return found.length > 0 && found.every((s) => s === slug)
}

t.test(`${TENANTS} tenants, ${REQUESTS} mixed requests, ${POOLS_MAX} pools: nothing crosses tenants, nothing is lost, nothing fails`, async (t) => {
  const { silo, app } = await testApp(t, {
    TENANT_POOLS_MAX: POOLS_MAX,
    TENANT_POOL_MAX: 2,
    CONNECTION_BUDGET: 8,
    // Long enough that a busy shared CI machine does not turn waits into TENANT_BUSY: a failure
    // here means a request was really lost, not that it queued behind the budget.
    TENANT_ACQUIRE_TIMEOUT_MS: 30000,
    HOST_CACHE_TTL_MS: 600000
  })
  const slugs = Array.from({ length: TENANTS }, (_, i) => `load-${String(i).padStart(2, '0')}`)
  const provisioning = Date.now()
  await createTenants(silo, slugs)
  t.comment(`provisioned ${TENANTS} tenants in ${Date.now() - provisioning} ms`)
  const models: TenantModel[] = slugs.map((slug) => ({ slug, host: `${slug}.test`, idle: new Map(), busy: new Map(), deleted: [], writes: 0, abandonedPosts: new Set(), uncertain: new Map() }))

  const http = await listen(t, app, CLIENTS)
  const { port } = app.server.address() as AddressInfo
  const counts = { requests: 0, posts: 0, lists: 0, reads: 0, patches: 0, deletes: 0, readsOfDeleted: 0, listedItems: 0, abandonedPosts: 0, abandonedPatches: 0 }
  const failures: string[] = []
  const foreign: string[] = []
  let sequence = 0

  const fail = (what: string, res: HttpResponse | Error): void => {
    failures.push(res instanceof Error ? `${what}: ${res.message}` : `${what}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`)
  }
  const send = async (model: TenantModel, method: string, path: string, payload?: unknown): Promise<HttpResponse | undefined> => {
    counts.requests++
    try {
      return await http.send(method, path, model.host, payload)
    } catch (error) {
      fail(`${model.slug} ${method} ${path}`, error as Error)
      return undefined
    }
  }
  const checkOwn = (model: TenantModel, article: ArticleBody, where: string): void => {
    if (!carriesOnly(model.slug, article.title, article.body)) foreign.push(`${where} on ${model.slug}: ${JSON.stringify(article)}`)
  }
  /** Takes a live article of the tenant out of the idle set for the duration of one request. */
  const claim = (model: TenantModel): [number, { title: string, body: string }] | undefined => {
    const ids = [...model.idle.keys()]
    if (ids.length === 0) return undefined
    const id = ids[Math.floor(Math.random() * ids.length)] as number
    const content = model.idle.get(id) as { title: string, body: string }
    model.idle.delete(id)
    model.busy.set(id, content)
    return [id, content]
  }
  const unclaim = (model: TenantModel, id: number, content: { title: string, body: string }): void => {
    model.busy.delete(id)
    model.idle.set(id, content)
  }

  const post = async (model: TenantModel): Promise<void> => {
    const n = ++sequence
    const content = { title: `${marker(model.slug)} #${n}`, body: `written for ${marker(model.slug)} as request ${n}` }
    const res = await send(model, 'POST', '/articles', content)
    counts.posts++
    if (res === undefined) return
    if (res.status !== 201) return fail(`${model.slug} POST`, res)
    const article = res.body as ArticleBody
    checkOwn(model, article, 'POST answer')
    model.writes++
    model.idle.set(article.id, content)
  }
  const list = async (model: TenantModel): Promise<void> => {
    const res = await send(model, 'GET', '/articles?limit=100')
    counts.lists++
    if (res === undefined) return
    if (res.status !== 200) return fail(`${model.slug} GET /articles`, res)
    const items = (res.body as { items: ArticleBody[] }).items
    counts.listedItems += items.length
    for (const item of items) checkOwn(model, item, 'GET /articles')
  }
  const read = async (model: TenantModel): Promise<void> => {
    const claimed = claim(model)
    if (claimed === undefined) return await post(model)
    const [id, content] = claimed
    const res = await send(model, 'GET', `/articles/${id}`)
    counts.reads++
    unclaim(model, id, content)
    if (res === undefined) return
    if (res.status !== 200) return fail(`${model.slug} GET /articles/${id}`, res)
    const article = res.body as ArticleBody
    checkOwn(model, article, 'GET /articles/:id')
    if (article.title !== content.title || article.body !== content.body) fail(`${model.slug} GET /articles/${id} is not what was last written`, res)
  }
  const patch = async (model: TenantModel): Promise<void> => {
    const claimed = claim(model)
    if (claimed === undefined) return await post(model)
    const [id, previous] = claimed
    const n = ++sequence
    const content = { title: `${marker(model.slug)} #${n} (edited)`, body: `${previous.body}; edited for ${marker(model.slug)} by request ${n}` }
    const res = await send(model, 'PATCH', `/articles/${id}`, content)
    counts.patches++
    if (res?.status === 200) {
      checkOwn(model, res.body as ArticleBody, 'PATCH answer')
      model.writes++
      unclaim(model, id, content)
      return
    }
    // Not known whether the edit landed: the final check accepts neither, so this stays a failure.
    unclaim(model, id, previous)
    if (res !== undefined) fail(`${model.slug} PATCH /articles/${id}`, res)
  }
  const remove = async (model: TenantModel): Promise<void> => {
    const claimed = claim(model)
    if (claimed === undefined) return await post(model)
    const [id, content] = claimed
    const res = await send(model, 'DELETE', `/articles/${id}`)
    counts.deletes++
    if (res?.status === 204) {
      model.busy.delete(id)
      model.deleted.push(id)
      model.writes++
      return
    }
    unclaim(model, id, content)
    if (res !== undefined) fail(`${model.slug} DELETE /articles/${id}`, res)
  }
  /** A deleted article stays deleted: the one 404 this run expects. */
  const readDeleted = async (model: TenantModel): Promise<void> => {
    const id = model.deleted[Math.floor(Math.random() * model.deleted.length)]
    if (id === undefined) return await list(model)
    const res = await send(model, 'GET', `/articles/${id}`)
    counts.readsOfDeleted++
    if (res === undefined) return
    if (res.status !== 404 || (res.body as { code?: string }).code !== 'NOT_FOUND') fail(`${model.slug} GET deleted /articles/${id}`, res)
  }

  /** Half of the clients that leave do so as soon as their request is sent, half a moment later, while the route is likely mid-query. */
  const leaveAfterMs = (): number => Math.random() < 0.5 ? 0 : Math.random() * 15
  const abandon = async (text: string): Promise<void> => {
    counts.requests++
    try {
      await abandonRequest(port, text, leaveAfterMs())
    } catch (error) {
      fail('a client that leaves could not send its request', error as Error)
    }
  }
  const abandonPost = async (model: TenantModel): Promise<void> => {
    const n = ++sequence
    const content = { title: `${marker(model.slug)} abandoned #${n}`, body: `written for ${marker(model.slug)} as request ${n}, its client gone` }
    model.abandonedPosts.add(content.title)
    counts.abandonedPosts++
    await abandon(requestText('POST', '/articles', model.host, content))
  }
  const abandonPatch = async (model: TenantModel): Promise<void> => {
    const claimed = claim(model)
    if (claimed === undefined) return await abandonPost(model)
    const [id, previous] = claimed
    const n = ++sequence
    const content = { title: `${marker(model.slug)} #${n} (edited, client gone)`, body: `${previous.body}; edited for ${marker(model.slug)} by request ${n}` }
    // From here on either content may be in the database: the article leaves the run.
    model.busy.delete(id)
    model.uncertain.set(id, [previous, content])
    counts.abandonedPatches++
    await abandon(requestText('PATCH', `/articles/${id}`, model.host, content))
  }

  // Each client picks a tenant and sends it a burst of 1 to 4 requests (a page load), then moves
  // on. Half the bursts go to 3 hot tenants, half to the long tail: with 5 pools for 12 or 50
  // tenants most tail bursts need a pool that is not cached and push another out, hot ones
  // included, often while other requests still hold it. The hot tenants keep pools in use long
  // enough to be evicted mid-request; the tail keeps the eviction rate up.
  const operations: Array<[number, (model: TenantModel) => Promise<void>]> = [
    [27, post], [18, list], [18, read], [14, patch], [9, remove], [4, readDeleted], [5, abandonPost], [5, abandonPatch]
  ]
  const pick = (): ((model: TenantModel) => Promise<void>) => {
    let roll = Math.random() * 100
    for (const [weight, operation] of operations) {
      roll -= weight
      if (roll < 0) return operation
    }
    return post
  }
  const connectMs: number[] = []
  silo.events.on('connection:opened', ({ durationMs }) => { connectMs.push(durationMs) })
  let peakWaiting = 0
  const sampler = setInterval(() => { peakWaiting = Math.max(peakWaiting, silo.pools.stats().budget.waiting) }, 20)
  t.teardown(() => { clearInterval(sampler) })
  const before = silo.pools.stats()
  const started = Date.now()
  let issued = 0
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (issued < REQUESTS) {
      const index = Math.random() < 0.5 ? Math.floor(Math.random() * HOT) : HOT + Math.floor(Math.random() * (models.length - HOT))
      const model = models[index] as TenantModel
      for (let burst = 1 + Math.floor(Math.random() * 4); burst > 0 && issued < REQUESTS; burst--) {
        issued++
        await pick()(model)
      }
    }
  }))
  const elapsed = Date.now() - started
  clearInterval(sampler)
  const after = silo.pools.stats()
  // The routes of clients that left may still be running: their writes land before the read-back.
  const drained = await eventually(() => { const stats = silo.pools.stats(); return stats.leases === 0 && stats.retiring === 0 })

  // Read every tenant database directly, as its own role, past the HTTP layer and the pool cache.
  const verifying = Date.now()
  let crossTenantRows = 0
  let lostWrites = 0
  let staleEdits = 0
  let resurrected = 0
  let unexpectedRows = 0
  let rowsChecked = 0
  let abandonedLanded = 0
  let uncertainWrong = 0
  let uncertainEdited = 0
  for (const model of models) {
    const rows = await withTenantDatabase(silo, model.slug, async (db) => await db('articles').select<ArticleBody[]>('id', 'title', 'body'))
    rowsChecked += rows.length
    const byId = new Map(rows.map((row) => [Number(row.id), row]))
    for (const row of rows) {
      if (!carriesOnly(model.slug, row.title, row.body)) {
        crossTenantRows++
        if (crossTenantRows <= 5) t.comment(`foreign row in ${model.slug}: ${JSON.stringify(row)}`)
      }
    }
    for (const [id, content] of model.idle) {
      const row = byId.get(id)
      if (row === undefined) lostWrites++
      else if (row.title !== content.title || row.body !== content.body) staleEdits++
    }
    for (const id of model.deleted) if (byId.has(id)) resurrected++
    for (const [id, [previous, sent]] of model.uncertain) {
      const row = byId.get(id)
      if (row !== undefined && row.title === sent?.title && row.body === sent.body) uncertainEdited++
      else if (row === undefined || row.title !== previous?.title || row.body !== previous.body) uncertainWrong++
    }
    const landed = rows.filter((row) => model.abandonedPosts.has(row.title))
    abandonedLanded += landed.length
    unexpectedRows += rows.filter((row) => !model.idle.has(Number(row.id)) && !model.uncertain.has(Number(row.id)) && !model.abandonedPosts.has(row.title)).length
  }
  t.comment(`read back every tenant database in ${Date.now() - verifying} ms`)
  const writes = models.reduce((sum, model) => sum + model.writes, 0)
  const live = models.reduce((sum, model) => sum + model.idle.size + model.uncertain.size, 0)
  const evictions = after.evicted - before.evicted

  t.comment(`tenants ${TENANTS}, requests ${counts.requests} in ${elapsed} ms (${Math.round(counts.requests / (elapsed / 1000))}/s) over ${CLIENTS} keep-alive connections`)
  t.comment(`requests: ${counts.posts} POST, ${counts.lists} list (${counts.listedItems} items checked), ${counts.reads} GET by id, ${counts.patches} PATCH, ${counts.deletes} DELETE, ${counts.readsOfDeleted} GET of deleted (404 expected)`)
  t.comment(`successful writes ${writes}; rows in the tenant databases ${rowsChecked} (expected ${live})`)
  t.comment(`pools opened ${after.opened - before.opened}, evictions ${evictions}, connections opened ${connectMs.length} (median ${median(connectMs).toFixed(1)} ms, p99 ${percentile(connectMs, 99).toFixed(1)} ms), peak budget waiters ${peakWaiting}, budget rejected ${after.budget.rejected - before.budget.rejected}`)
  t.comment(`clients that left after their body: ${counts.abandonedPosts} POST (${abandonedLanded} landed), ${counts.abandonedPatches} PATCH (${uncertainEdited} applied); leases and retiring pools drained: ${String(drained)}`)
  t.comment(`cross-tenant rows ${crossTenantRows}, cross-tenant answers ${foreign.length}, lost writes ${lostWrites}, stale edits ${staleEdits}, resurrected deletes ${resurrected}, unexpected rows ${unexpectedRows}, failed requests ${failures.length}`)
  for (const failure of failures.slice(0, 10)) t.comment(`failed: ${failure}`)
  for (const answer of foreign.slice(0, 10)) t.comment(`foreign: ${answer}`)

  t.equal(counts.requests, REQUESTS, 'every planned request was sent')
  t.equal(failures.length, 0, 'no request failed (only reads of deleted articles answered 404, as they must)')
  t.equal(foreign.length, 0, 'no answer carried another tenant\'s article')
  t.equal(crossTenantRows, 0, 'no tenant database holds a row of another tenant')
  t.equal(lostWrites, 0, 'every created article is in its tenant\'s database')
  t.equal(staleEdits, 0, 'every article holds its last successful edit')
  t.equal(resurrected, 0, 'every deleted article is gone')
  t.equal(unexpectedRows, 0, 'no tenant database holds a row nobody created there')
  t.equal(uncertainWrong, 0, 'every article whose editor left holds its content before or the one sent')
  t.equal(rowsChecked - abandonedLanded, live, 'row count matches the successful writes (and the POSTs of clients that left that landed)')
  t.ok(counts.posts > REQUESTS / 5 && counts.patches > 0 && counts.deletes > 0 && counts.readsOfDeleted > 0 && counts.abandonedPosts > 0 && counts.abandonedPatches > 0, 'the mix exercised every operation')
  t.ok(drained, 'once the load was over every lease was given back and every retired pool destroyed, those of clients that left included')
  t.ok(evictions >= REQUESTS / 8, `pools were evicted constantly (${evictions} evictions for ${REQUESTS} requests)`)
  t.ok(after.opened - before.opened >= TENANTS, 'every tenant got a pool at some point')

  t.ok(await eventually(() => silo.pools.stats().retiring === 0), 'every evicted pool was destroyed once its requests finished')
  let backends = 0
  t.ok(await eventually(async () => {
    const stats = silo.pools.stats()
    backends = await countTenantBackends(silo, POOL_SESSIONS)
    return stats.budget.open === stats.connections.used + stats.connections.free && backends === stats.budget.open
  }), 'the budget, the cached pools and PostgreSQL agree on the connections left')
  const settled = silo.pools.stats()
  t.comment(`afterwards: pools ${settled.pools}, retiring ${settled.retiring}, leases ${settled.leases}, budget open ${settled.budget.open}, backends ${backends}`)
  t.equal(settled.leases, 0, 'no lease is left behind')
  t.ok(settled.pools <= POOLS_MAX, `never more than ${POOLS_MAX} pools cached (${settled.pools})`)
  t.ok(backends <= POOLS_MAX * 2, `no connection left beyond what the cached pools may hold (${backends})`)
})
