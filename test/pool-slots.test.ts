// Pure unit tests: needs no database and no network (which tenants keep a pool, and the frequency sketch behind it).
import t from './helpers/tap.js'
import { LRUCache } from 'lru-cache'
import { FrequencySketch, keyHash } from '../src/tenancy/frequency-sketch.js'
import { PoolSlots } from '../src/tenancy/pool-slots.js'
import { zipf, zipfWeights } from '../src/testing/zipf.js'

interface Entry { key: string, lastUsed: number }

/** Slots of `max` that record every entry they evict. */
function slots (max: number): { slots: PoolSlots<Entry>, evicted: string[], request: (key: string) => boolean } {
  const evicted: string[] = []
  const s = new PoolSlots<Entry>(max, (entry) => { evicted.push(entry.key) })
  /** A request as the pool cache makes it: a hit, or a miss that puts a new entry in. */
  const request = (key: string): boolean => {
    if (s.get(key) !== undefined) return true
    s.set(key, { key, lastUsed: 0 })
    return false
  }
  return { slots: s, evicted, request }
}

/** A seeded generator (mulberry32), so that every run sees the same requests. */
function seeded (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** The request share of the `c` most frequent ranks under Zipf(s) over n (1 − m*). */
function topShare (n: number, s: number, c: number): number {
  const weights = zipfWeights(n, s)
  return weights.slice(0, c).reduce((a, b) => a + b, 0) / weights.reduce((a, b) => a + b, 0)
}

t.test('the sketch counts each key, never fewer than asked, up to 15, and halves its counts as requests pass', async (t) => {
  const sketch = new FrequencySketch(1000)
  const random = seeded(1)
  const asked = new Map<string, number>()
  // 5,000 increments over 1,000 keys: under the 40,000 (40 × capacity) after which the counts are halved.
  for (let i = 0; i < 5000; i++) {
    const key = `tenant-${Math.floor(random() * 1000)}`
    sketch.increment(keyHash(key))
    asked.set(key, (asked.get(key) ?? 0) + 1)
  }
  let under = 0
  let exact = 0
  for (const [key, n] of asked) {
    const counted = sketch.frequency(keyHash(key))
    if (counted < Math.min(n, 15)) under++
    if (counted === Math.min(n, 15)) exact++
  }
  t.equal(under, 0, 'no key is counted below its requests')
  t.ok(exact / asked.size > 0.9, `most keys are counted exactly (${exact} of ${asked.size})`)
  const strangers = Array.from({ length: 1000 }, (_, i) => sketch.frequency(keyHash(`stranger-${i}`)))
  t.ok(strangers.filter((n) => n === 0).length > 900, 'keys never asked for count 0, but for a few collisions')

  const hot = new FrequencySketch(16)
  for (let i = 0; i < 40; i++) hot.increment(keyHash('hot'))
  t.equal(hot.frequency(keyHash('hot')), 15, 'capped at 15')
  // 640 counted increments (40 × 16) halve every counter once (the hot key's past 15 were not counted).
  for (let i = 0; i < 700; i++) hot.increment(keyHash(`other-${i % 100}`))
  t.ok(hot.frequency(keyHash('hot')) <= 8, `the hot key's count was halved (${hot.frequency(keyHash('hot'))})`)
})

t.test('with one slot the window is everything: a plain LRU', async (t) => {
  const { slots: s, evicted, request } = slots(1)
  request('a')
  request('a')
  request('a')
  request('b')
  t.same(evicted, ['a'], 'the frequent entry left for the newcomer')
  t.same(s.keys(), ['b'])
})

t.test('a stream of tenants seen once does not push out the tenants asked for all the time', async (t) => {
  const { slots: s, evicted, request } = slots(100)
  const hot = Array.from({ length: 20 }, (_, i) => `hot-${i}`)
  for (let round = 0; round < 5; round++) for (const key of hot) request(key)
  // 1,000 one-off tenants: ten times the slots, so a plain LRU would have lost every hot one.
  for (let i = 0; i < 1000; i++) request(`once-${i}`)
  t.same(hot.filter((key) => !s.has(key)), [], 'every hot tenant kept its slot')
  t.ok(s.size <= 100, `never more than the slots (${s.size})`)
  t.equal(evicted.length + s.size, 1020, 'every entry put in is either held or was evicted, once')
  t.equal(new Set(evicted).size, evicted.length, 'no entry evicted twice')
  t.notOk(evicted.some((key) => key.startsWith('hot-')), 'no hot tenant evicted')

  const lru = new LRUCache<string, true>({ max: 100 })
  for (let round = 0; round < 5; round++) for (const key of hot) lru.set(key, true)
  for (let i = 0; i < 1000; i++) lru.set(`once-${i}`, true)
  t.equal(hot.filter((key) => lru.has(key)).length, 0, 'where a plain LRU of the same size kept none of them')
})

t.test('a newcomer asked for more often than the least recent main entry takes its place', async (t) => {
  const { slots: s, evicted, request } = slots(10)
  for (let i = 0; i < 10; i++) request(`old-${i}`)
  t.equal(s.size, 10)
  // A new tenant asked for three times, with other newcomers in between (each pushes the window).
  for (let round = 0; round < 3; round++) {
    request('rising')
    request(`passing-${round}`)
  }
  request('rising')
  request('another')
  t.ok(s.has('rising'), 'the rising tenant was admitted to the main part')
  t.ok(evicted.some((key) => key.startsWith('old-')), 'in place of an old entry asked for once')
})

t.test('get counts and reorders, peek does not; delete and clear hand back what they remove; keys are most recent first', async (t) => {
  const { slots: s, evicted } = slots(10)
  for (const key of ['a', 'b', 'c']) s.set(key, { key, lastUsed: 0 })
  s.get('a')
  t.same(s.keys(), ['a', 'c', 'b'])
  s.peek('b')
  t.same(s.keys(), ['a', 'c', 'b'], 'peek changed no order')
  t.equal(s.delete('c')?.key, 'c')
  t.equal(s.delete('c'), undefined, 'a second delete finds nothing')
  t.same(s.clear().map((entry) => entry.key).sort(), ['a', 'b'])
  t.equal(s.size, 0)
  t.same(evicted, [], 'delete and clear leave the retiring to the caller')
})

t.test('under Zipf(1.1) over 1,000 tenants with 50 slots, misses come near the least any policy can reach, well under a plain LRU', async (t) => {
  const draw = zipf(1000, 1.1, seeded(42))
  const { request } = slots(50)
  const lru = new LRUCache<number, true>({ max: 50 })
  // A warm-up of 20,000 requests, then 100,000 counted.
  let misses = 0
  let lruMisses = 0
  const counted = 100_000
  for (let i = 0; i < 20_000 + counted; i++) {
    const rank = draw()
    const hit = request(`t${rank}`)
    const lruHit = lru.get(rank) !== undefined
    if (!lruHit) lru.set(rank, true)
    if (i >= 20_000) {
      if (!hit) misses++
      if (!lruHit) lruMisses++
    }
  }
  const floor = 1 - topShare(1000, 1.1, 50)
  const ratio = misses / counted
  const lruRatio = lruMisses / counted
  t.ok(lruRatio > floor + 0.08, `the plain LRU misses ${lruRatio.toFixed(3)}, the floor m* is ${floor.toFixed(3)}`)
  t.ok(ratio < floor + 0.03, `W-TinyLFU misses ${ratio.toFixed(3)}, within 0.03 of m* ${floor.toFixed(3)}`)
})
