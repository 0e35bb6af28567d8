/**
 * Soak: unbounded-input resistance. A flood of distinct random Host headers must neither grow
 * memory nor reach the catalog more than the design allows, and real tenants keep being served
 * throughout. Two configurations:
 *   (a) catalog feed connected (the default): an unknown host is answered from the domain index,
 *       with no catalog query and no cache entry;
 *   (b) no feed (what happens while it is down): one catalog query per distinct host, answers kept
 *       in a negative cache that never holds more than HOST_CACHE_MAX hosts.
 * Catalog queries are counted twice: the resolver's misses, and every query the catalog's Knex sends.
 * Memory is the heap after forced garbage collections, before, part-way and after the flood: it
 * must not grow with the number of hosts.
 *
 * Size: SOAK_SCALE (default 1): distinct hosts per configuration, 12,000 to warm up + 10,000 x scale.
 *   CI size (default, SOAK_SCALE=1): 22,000 hosts each, 16 s alone on 2 cores.
 *   Full size (SOAK_SCALE=10): 112,000 hosts each, a few minutes (the catalog look-ups of (b) dominate):
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres SOAK_SCALE=10 npx tap --timeout=1800 dist/test/soak/host-flood.test.js (after npm run build:test)
 */
import { randomBytes } from 'node:crypto'
import t from '../helpers/tap.js'
import type { FastifyInstance } from 'fastify'
import type { Silo } from '../../src/silo.js'
import { anotherInstance, createTenant, testApp } from '../helpers/silo.js'
import { mb, settledHeapUsed, soakScale } from '../helpers/soak.js'

const scale = soakScale()
const HOSTS = Math.round(10000 * scale)
/**
 * Heap is measured after the warm-up, after SETTLE more hosts (the rest of the JIT and library
 * warm-up lands there), and then SAMPLES times over the last part: the least-squares slope of
 * those samples (bytes per host) is what must stay near zero. One pair of samples is not enough:
 * a collected heap wanders by a few hundred KB between any two measurements, which over 7,000
 * hosts reads as 50 bytes per host though nothing leaks.
 */
const SETTLE = Math.floor(HOSTS * 0.3)
const SAMPLES = 8
const CACHE_MAX = 1000
/** Requests in flight at once. */
const CONCURRENCY = 50
/** One request in this many is for the real tenant. */
const KNOWN_EVERY = 100
/**
 * Hosts sent before the first heap measurement, so caches are full and code paths warm. Without a
 * feed the heap still grows for the first ten thousand hosts or so (old space +0.5 MB, code +0.3 MB:
 * the JIT and the libraries settling), then stays (0.6-1.0 bytes per host over the last 21,000 at
 * SOAK_SCALE=3): a warm-up of 2,000 left the end of that inside the measured part, 25-50 bytes per
 * host against a limit of 50, and a CI run failed at 50.2.
 */
const WARM_UP = 12_000
/** Growth allowed over the whole flood, and per host over its last part (a leak of one small object per host exceeds it). */
const MAX_GROWTH = 30 * 1024 * 1024
const MAX_BYTES_PER_HOST = 50

// Hosts are derived from their index, not kept in a list, so the test itself holds no per-host memory.
const salt = randomBytes(4).toString('hex')
const floodHost = (i: number): string => `h${i}-${salt}.flood.example`

interface FloodResult {
  requests: number
  wrongUnknown: number
  wrongKnown: number
  knownServed: number
  /** Largest negative cache seen after a batch. */
  peakNegative: number
  examples: string[]
}

/** Sends hosts `from` to `to` - 1 through `app`, CONCURRENCY at a time, the real tenant's host interleaved. */
async function flood (app: FastifyInstance, silo: Silo, from: number, to: number, result: FloodResult): Promise<void> {
  for (let start = from; start < to; start += CONCURRENCY) {
    const batch: Array<Promise<void>> = []
    for (let i = start; i < Math.min(to, start + CONCURRENCY); i++) {
      const known = i % KNOWN_EVERY === 0
      const host = known ? 'real.test' : floodHost(i)
      batch.push(app.inject({ url: '/articles?limit=1', headers: { host } }).then((res) => {
        result.requests++
        if (known) {
          if (res.statusCode === 200) result.knownServed++
          else {
            result.wrongKnown++
            if (result.examples.length < 5) result.examples.push(`real.test: ${res.statusCode} ${res.body.slice(0, 120)}`)
          }
        } else if (res.statusCode !== 404 || res.json().code !== 'TENANT_NOT_FOUND') {
          result.wrongUnknown++
          if (result.examples.length < 5) result.examples.push(`${host}: ${res.statusCode} ${res.body.slice(0, 120)}`)
        }
      }))
    }
    await Promise.all(batch)
    result.peakNegative = Math.max(result.peakNegative, silo.resolver.stats().negativeCached)
  }
}

interface HeapTrend {
  /** Heap after the warm-up, after SETTLE hosts, and at the end. */
  base: number
  settled: number
  end: number
  /** Least-squares growth over the last part, in bytes per host. */
  perHost: number
}

/** Least-squares slope of heap samples taken at the given host counts. */
function slope (points: Array<[hosts: number, heap: number]>): number {
  const n = points.length
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n
  let num = 0
  let den = 0
  for (const [x, y] of points) {
    num += (x - meanX) * (y - meanY)
    den += (x - meanX) ** 2
  }
  return den === 0 ? 0 : num / den
}

const describeHeap = (heap: HeapTrend): string =>
  `heap ${mb(heap.base)} → ${mb(heap.settled)} → ${mb(heap.end)}: growth ${mb(heap.end - heap.base)}, ${heap.perHost.toFixed(1)} bytes per host over the last ${HOSTS - SETTLE} hosts (slope of ${SAMPLES + 1} samples)`

/** Floods warm-up, first part and last part, sampling the heap along the way and counting catalog queries. */
async function measuredFlood (app: FastifyInstance, silo: Silo): Promise<{ result: FloodResult, heap: HeapTrend, catalogQueries: number, resolver: { before: ReturnType<Silo['resolver']['stats']>, after: ReturnType<Silo['resolver']['stats']> } }> {
  let catalogQueries = 0
  const count = (): void => { catalogQueries++ }
  silo.catalog.knex.on('query', count)
  const result: FloodResult = { requests: 0, wrongUnknown: 0, wrongKnown: 0, knownServed: 0, peakNegative: 0, examples: [] }
  const before = silo.resolver.stats()
  try {
    await flood(app, silo, 0, WARM_UP, result)
    const base = await settledHeapUsed()
    await flood(app, silo, WARM_UP, WARM_UP + SETTLE, result)
    const points: Array<[number, number]> = [[SETTLE, await settledHeapUsed()]]
    for (let k = 1; k <= SAMPLES; k++) {
      const from = SETTLE + Math.round(((HOSTS - SETTLE) * (k - 1)) / SAMPLES)
      const to = SETTLE + Math.round(((HOSTS - SETTLE) * k) / SAMPLES)
      await flood(app, silo, WARM_UP + from, WARM_UP + to, result)
      points.push([to, await settledHeapUsed()])
    }
    const heap = { base, settled: points[0]?.[1] ?? 0, end: points.at(-1)?.[1] ?? 0, perHost: slope(points) }
    return { result, heap, catalogQueries, resolver: { before, after: silo.resolver.stats() } }
  } finally {
    silo.catalog.knex.off('query', count)
  }
}

const distinctHosts = WARM_UP + HOSTS - Math.ceil((WARM_UP + HOSTS) / KNOWN_EVERY)

const { silo, app } = await testApp(t, { HOST_CACHE_MAX: CACHE_MAX, HOST_CACHE_TTL_MS: 600000 })
await createTenant(silo, 'real')
// The notifications of that create arrive asynchronously; one landing after the first request
// below would empty its cache entry mid-flood. Wait until they have all been applied.
await silo.syncCatalog()

t.test(`(a) feed connected: ${distinctHosts} distinct unknown hosts make no catalog query and no cache entry`, async (t) => {
  // The first request of the real tenant fills its cache entry; from there on nothing may change.
  t.equal((await app.inject({ url: '/tenant', headers: { host: 'real.test' } })).statusCode, 200)
  const started = Date.now()
  const { result, heap, catalogQueries, resolver } = await measuredFlood(app, silo)
  t.comment(`hosts tried ${distinctHosts} distinct (+ ${result.knownServed} requests for the real tenant) in ${Date.now() - started} ms`)
  t.comment(`catalog queries ${catalogQueries}, resolver misses ${resolver.after.misses - resolver.before.misses}, negative hits ${resolver.after.negativeHits - resolver.before.negativeHits}`)
  t.comment(`cache sizes: known ${resolver.after.cached}, unknown ${resolver.after.negativeCached} (before: ${resolver.before.cached}, ${resolver.before.negativeCached}); domain index ${String(resolver.after.indexed)}`)
  t.comment(describeHeap(heap))
  for (const example of result.examples) t.comment(`wrong answer: ${example}`)

  t.equal(result.wrongUnknown, 0, 'every unknown host got 404 TENANT_NOT_FOUND')
  t.equal(result.wrongKnown, 0, 'the real tenant was served throughout')
  t.equal(result.knownServed, WARM_UP + HOSTS - distinctHosts)
  t.equal(catalogQueries, 0, 'not one catalog query')
  t.equal(resolver.after.misses, resolver.before.misses, 'the resolver did not look anything up')
  t.equal(resolver.after.negativeHits - resolver.before.negativeHits, distinctHosts, 'every unknown host was answered from the domain index')
  t.equal(resolver.after.negativeCached, resolver.before.negativeCached, 'the negative cache did not grow')
  t.equal(resolver.after.cached, resolver.before.cached, 'nor did the cache of known hosts')
  t.ok(heap.end - heap.base < MAX_GROWTH, `heap growth over the flood below ${mb(MAX_GROWTH)} (${mb(heap.end - heap.base)})`)
  t.ok(heap.perHost < MAX_BYTES_PER_HOST, `heap does not grow with the number of hosts (${heap.perHost.toFixed(1)} bytes per host)`)
})

t.test(`(b) no feed, HOST_CACHE_MAX=${CACHE_MAX}: at most one catalog query per distinct host, a bounded negative cache`, async (t) => {
  const { silo: b, app: appB } = await anotherInstance(t, silo.config, { listen: false })
  t.equal(b.resolver.stats().indexed, null, 'this instance has no domain index')

  const started = Date.now()
  const { result, heap, catalogQueries, resolver } = await measuredFlood(appB, b)
  const elapsed = Date.now() - started
  const misses = resolver.after.misses - resolver.before.misses

  // Within the TTL, the hosts still in the negative cache (the most recent ones) are not looked up again.
  const recent = Array.from({ length: CACHE_MAX / 2 }, (_, k) => floodHost(WARM_UP + HOSTS - 1 - k)).filter((_, k) => (WARM_UP + HOSTS - 1 - k) % KNOWN_EVERY !== 0)
  const beforeRepeat = b.resolver.stats()
  const repeated = await Promise.all(recent.map(async (host) => (await appB.inject({ url: '/articles', headers: { host } })).statusCode))
  const afterRepeat = b.resolver.stats()
  // Concurrent requests for one new host share a single look-up.
  const fresh = `fresh-${salt}.flood.example`
  const together = await Promise.all(Array.from({ length: 50 }, async () => (await appB.inject({ url: '/articles', headers: { host: fresh } })).statusCode))
  const afterTogether = b.resolver.stats()

  t.comment(`hosts tried ${distinctHosts} distinct (+ ${result.knownServed} requests for the real tenant) in ${elapsed} ms`)
  t.comment(`catalog queries ${catalogQueries} (resolver misses ${misses}) for ${distinctHosts + 1} distinct hosts; repeating ${recent.length} recent hosts: ${afterRepeat.misses - beforeRepeat.misses} more; 50 concurrent requests for one new host: ${afterTogether.misses - afterRepeat.misses}`)
  t.comment(`cache sizes: known ${resolver.after.cached}, unknown ${resolver.after.negativeCached}, peak unknown ${result.peakNegative} (HOST_CACHE_MAX ${CACHE_MAX})`)
  t.comment(describeHeap(heap))
  for (const example of result.examples) t.comment(`wrong answer: ${example}`)

  t.equal(result.wrongUnknown, 0, 'every unknown host got 404 TENANT_NOT_FOUND')
  t.equal(result.wrongKnown, 0, 'the real tenant was served throughout')
  t.ok(misses <= distinctHosts + 1, `at most one look-up per distinct host (${misses} for ${distinctHosts} random hosts and the real one)`)
  t.ok(misses >= distinctHosts, 'and each unknown host was looked up (nothing answered it without the catalog)')
  t.ok(catalogQueries <= misses, `the catalog received no more queries than look-ups (${catalogQueries})`)
  t.ok(result.peakNegative <= CACHE_MAX, `the negative cache never held more than HOST_CACHE_MAX hosts (peak ${result.peakNegative})`)
  t.equal(resolver.after.negativeCached, CACHE_MAX, 'it filled up to its bound, and no further')
  t.ok(resolver.after.cached <= 1, 'the known-host cache holds only the real tenant')
  t.ok(repeated.every((status) => status === 404), 'repeated hosts still get 404')
  t.equal(afterRepeat.misses, beforeRepeat.misses, 'repeating cached unknown hosts within the TTL queries nothing')
  t.same(new Set(together), new Set([404]))
  t.equal(afterTogether.misses - afterRepeat.misses, 1, 'concurrent requests for a new host make one look-up')
  t.ok(heap.end - heap.base < MAX_GROWTH, `heap growth over the flood below ${mb(MAX_GROWTH)} (${mb(heap.end - heap.base)})`)
  t.ok(heap.perHost < MAX_BYTES_PER_HOST, `heap does not grow with the number of hosts (${heap.perHost.toFixed(1)} bytes per host)`)
  t.equal((await appB.inject({ url: '/tenant', headers: { host: 'real.test' } })).json().slug, 'real', 'the real tenant is still served after the flood')
})
