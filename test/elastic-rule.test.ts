// Pure unit tests: needs no database and no network (a fake tarn pool, a fake clock).
import t from './helpers/tap.js'
import { closeIdleConnection, makeElastic } from '../src/tenancy/elastic-pool.js'

/**
 * A manual clock: while `run` executes, setTimeout and performance.now are this clock's, and
 * time moves only by `advance`. Everything runs synchronously inside `run`, so tap's own timers
 * never see the fakes.
 */
class Clock {
  now = 0
  #timers: Array<{ at: number, seq: number, callback: () => void }> = []
  #seq = 0

  run (body: () => void): void {
    const realSetTimeout = globalThis.setTimeout
    const realNow = Object.getOwnPropertyDescriptor(performance, 'now')
    globalThis.setTimeout = ((callback: () => void, ms = 0) => {
      this.#timers.push({ at: this.now + ms, seq: this.#seq++, callback })
      return { unref () { return this }, ref () { return this } }
    }) as unknown as typeof setTimeout
    Object.defineProperty(performance, 'now', { value: () => this.now, configurable: true, writable: true })
    try {
      body()
    } finally {
      globalThis.setTimeout = realSetTimeout
      if (realNow === undefined) Reflect.deleteProperty(performance, 'now')
      else Object.defineProperty(performance, 'now', realNow)
    }
  }

  /** Moves time forward, firing due timers in order (including those they set). */
  advance (ms: number): void {
    const until = this.now + ms
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq)
      const next = this.#timers[0]
      if (next === undefined || next.at > until) break
      this.#timers.shift()
      this.now = next.at
      next.callback()
    }
    this.now = until
  }

  get pending (): number {
    return this.#timers.length
  }
}

/** The parts of a tarn pool makeElastic reads, with counts the test sets and events it emits. */
class FakePool {
  max = 10
  used: Array<{ resource: unknown }> = []
  free = 0
  pendingAcquires = 0
  pendingCreates = 0
  tries = 0
  #listeners = new Map<string, Array<(...args: unknown[]) => void>>()
  numUsed = (): number => this.used.length
  numFree = (): number => this.free
  numPendingAcquires = (): number => this.pendingAcquires
  numPendingCreates = (): number => this.pendingCreates
  /** As tarn does: with requests waiting and room under its max, it starts opening a connection. */
  _tryAcquireOrCreate = (): void => {
    this.tries++
    if (this.pendingAcquires > this.pendingCreates && this.used.length + this.free + this.pendingCreates < this.max) this.pendingCreates++
  }

  on (event: string, listener: (...args: unknown[]) => void): void {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener])
  }

  emit (event: string, ...args: unknown[]): void {
    for (const listener of this.#listeners.get(event) ?? []) listener(...args)
  }

  /** A request for a connection that finds none free: it queues (tarn emits the event just before). */
  request (eventId: number): void {
    this.emit('acquireRequest', eventId)
    this.pendingAcquires++
  }

  /** An open under way completes, and tarn hands the new connection to the request waiting longest. */
  opened (eventId: number, resource: object): void {
    this.pendingCreates--
    this.acquired(eventId, resource)
  }

  /** A connection given back (tarn emits the event, then moves it to its free list). */
  release (resource: object): void {
    this.emit('release', resource)
    this.used = this.used.filter((used) => used.resource !== resource)
  }

  /** A request handed a connection. */
  acquired (eventId: number, resource: object, queued = true): void {
    if (queued) this.pendingAcquires--
    this.used.push({ resource })
    this.emit('acquireSuccess', eventId, resource)
  }
}

const GRACE = 10

/** A fake pool made elastic up to `max`, with the grace `graceMs` answers (GRACE unless given). */
function setUp (max = 4, graceMs = (): number => GRACE): { clock: Clock, pool: FakePool, grew: () => number } {
  const clock = new Clock()
  const pool = new FakePool()
  let grown = 0
  clock.run(() => makeElastic(pool, { max, graceMs, grew: () => { grown++ } }))
  return { clock, pool, grew: () => grown }
}

t.test('the fake clock drives the module’s timers and time', async (t) => {
  const clock = new Clock()
  const seen: number[] = []
  clock.run(() => {
    setTimeout(() => { seen.push(performance.now()) }, 5)
    clock.advance(4)
    t.same(seen, [], 'not before its time')
    clock.advance(1)
    t.same(seen, [5], 'at its time, with performance.now() at that time')
  })
  t.not(performance.now(), 5, 'performance.now is real again')
  t.equal(clock.pending, 0)
})

t.test('the pool starts with a limit of one connection', async (t) => {
  const { pool } = setUp()
  t.equal(pool.max, 1)
})

t.test('a slow query: a request that waits the grace makes the pool grow by one', async (t) => {
  const { clock, pool, grew } = setUp()
  const r1 = {}
  clock.run(() => {
    pool.acquired(1, r1, false)
    clock.advance(2)
    pool.request(2)
    clock.advance(GRACE - 1)
    t.equal(pool.max, 1, 'not before the grace')
    t.equal(grew(), 0)
    clock.advance(1)
    t.equal(pool.max, 2, 'grown at the grace')
    t.equal(grew(), 1, 'grew told once')
    t.equal(pool.tries, 1, 'and tarn asked to open a connection now')
    clock.advance(10 * GRACE)
    t.equal(pool.max, 2, 'once per request')
  })
})

t.test('while other tenants wait for a slot, a waiting request does not grow the pool; it grows once no one waits', async (t) => {
  const clock = new Clock()
  const pool = new FakePool()
  let room = false
  let grown = 0
  clock.run(() => makeElastic(pool, { max: 4, graceMs: () => GRACE, grew: () => { grown++ }, room: () => room }))
  clock.run(() => {
    pool.acquired(1, {}, false)
    pool.request(2)
    clock.advance(5 * GRACE)
    t.equal(pool.max, 1, 'one connection while others wait for a slot')
    t.equal(grown, 0)
    room = true
    clock.advance(GRACE)
    t.equal(pool.max, 2, 'grown at the next grace after no one waits')
    t.equal(grown, 1)
  })
})

t.test('a request served within the grace does not make the pool grow', async (t) => {
  const { clock, pool, grew } = setUp()
  const r1 = {}
  clock.run(() => {
    pool.acquired(1, r1, false)
    pool.request(2)
    clock.advance(GRACE / 2)
    pool.release(r1)
    pool.acquired(2, r1)
    clock.advance(10 * GRACE)
  })
  t.equal(pool.max, 1)
  t.equal(grew(), 0)
  t.equal(pool.tries, 0)
})

t.test('a request that fails (acquire timeout) before the grace does not make the pool grow', async (t) => {
  const { clock, pool, grew } = setUp()
  clock.run(() => {
    pool.acquired(1, {}, false)
    pool.request(2)
    clock.advance(GRACE / 2)
    // As tarn does: the event first, then the request leaves the queue.
    pool.emit('acquireFail', 2, new Error('timeout'))
    pool.pendingAcquires--
    clock.advance(10 * GRACE)
  })
  t.equal(pool.max, 1)
  t.equal(grew(), 0)
})

t.test('quick queries and a shallow queue: no growth while each hold is shorter than the grace', async (t) => {
  const { clock, pool, grew } = setUp()
  const r1 = {}
  clock.run(() => {
    pool.acquired(1, r1, false)
    pool.request(100)
    // Other requests take the one connection for a moment each; request 100 keeps waiting.
    for (let eventId = 2; eventId < 30; eventId++) {
      clock.advance(GRACE / 2 - 1)
      pool.release(r1)
      pool.acquired(eventId, r1, false)
    }
    t.equal(pool.max, 1, 'no growth while every hold is short')
    t.equal(grew(), 0)
    const quietSince = clock.now
    // The connection now stays held: a later check (every grace while the request waits) grows the pool.
    clock.advance(2 * GRACE)
    t.equal(pool.max, 2, 'grown once a hold lasts the grace')
    t.ok(clock.now - quietSince <= 2 * GRACE, 'within two graces of the hold starting')
  })
})

t.test('a deep queue makes the pool grow even when each query is quick', async (t) => {
  for (const [queued, grows] of [[7, false], [8, true], [20, true]] as const) {
    const { clock, pool } = setUp()
    const r1 = {}
    clock.run(() => {
      pool.acquired(1, r1, false)
      for (let eventId = 2; eventId < 2 + queued; eventId++) pool.request(eventId)
      // The one connection changes hands just before the check: no hold lasts the grace.
      clock.advance(GRACE - 1)
      pool.release(r1)
      pool.acquired(1000, r1, false)
      clock.advance(1)
    })
    t.equal(pool.max > 1, grows, `${queued} queued on one connection: ${grows ? 'grows' : 'does not grow'}`)
  }
})

t.test('a deep queue grows the pool by one a grace, each time once the open before it is done', async (t) => {
  const { clock, pool, grew } = setUp(50)
  const r1 = {}
  clock.run(() => {
    pool.acquired(1, r1, false)
    for (let eventId = 2; eventId < 40; eventId++) pool.request(eventId)
    clock.advance(GRACE)
    t.equal(pool.max, 2, '38 queued on one connection: one more connection, not one per waiter')
    t.equal(pool.pendingCreates, 1)
    clock.advance(5 * GRACE)
    t.equal(pool.max, 2, 'not again while that open is under way')
    pool.opened(2, {})
    clock.advance(GRACE)
    t.equal(pool.max, 3, 'the queue is still deep (37 on 2): one more, a grace later')
  })
  t.equal(grew(), 2)
})

t.test('a queue deep for a moment, not for the grace, does not grow the pool', async (t) => {
  // Requests spread at random over a few tenants pile up eight deep on one of them now and then;
  // a backend more for each such moment would only add backends to the server's busy cores.
  const { clock, pool, grew } = setUp(4)
  const r1 = {}
  let next = 1
  const serve = (): void => {
    pool.release(r1)
    pool.acquired(next++, r1)
  }
  clock.run(() => {
    pool.acquired(0, r1, false)
    for (let eventId = 1; eventId <= 3; eventId++) pool.request(eventId)
    clock.advance(4)
    serve()
    clock.advance(4)
    serve()
    clock.advance(1)
    // The third request has waited 9 ms when seven more come at once: eight queued on one connection.
    for (let eventId = 4; eventId <= 10; eventId++) pool.request(eventId)
    clock.advance(1)
    t.equal(pool.max, 1, 'the oldest request waited the grace and the queue is eight deep, but only for the last millisecond: no growth')
    for (let i = 0; i < 8; i++) {
      clock.advance(1)
      serve()
    }
    clock.advance(10 * GRACE)
    t.equal(pool.max, 1, 'the queue drained on the one connection')
    t.equal(grew(), 0)
  })
})

t.test('the deep-queue threshold scales with the connections in use', async (t) => {
  const { clock, pool } = setUp(4)
  clock.run(() => {
    pool.max = 2
    const resources = [{}, {}]
    resources.forEach((resource, index) => pool.acquired(index + 1, resource, false))
    for (let eventId = 10; eventId < 10 + 15; eventId++) pool.request(eventId)
    clock.advance(GRACE - 1)
    resources.forEach((resource, index) => {
      pool.release(resource)
      pool.acquired(1000 + index, resource, false)
    })
    clock.advance(1)
    t.equal(pool.max, 2, '15 queued on 2 connections in use is below 16')
  })
})

t.test('no growth when a connection is free or one can still be opened', async (t) => {
  {
    const { clock, pool } = setUp()
    clock.run(() => {
      pool.acquired(1, {}, false)
      pool.free = 1
      pool.request(2)
      clock.advance(10 * GRACE)
    })
    t.equal(pool.max, 1, 'a free connection: no watch')
  }
  {
    const { clock, pool } = setUp()
    clock.run(() => {
      pool.request(1)
      clock.advance(10 * GRACE)
    })
    t.equal(pool.max, 1, 'an empty pool under its limit opens its first connection itself')
    t.equal(pool.tries, 0)
  }
})

t.test('never above the configured max', async (t) => {
  {
    const { clock, pool, grew } = setUp(2)
    clock.run(() => {
      pool.acquired(1, {}, false)
      pool.request(2)
      clock.advance(GRACE)
      t.equal(pool.max, 2, 'grows to the max')
      pool.acquired(2, {})
      pool.request(3)
      clock.advance(10 * GRACE)
    })
    t.equal(pool.max, 2, 'and no further')
    t.equal(grew(), 1)
    t.equal(clock.pending, 0, 'no timer left once at the max')
  }
  {
    const { clock, pool } = setUp(1)
    clock.run(() => {
      pool.acquired(1, {}, false)
      pool.request(2)
      clock.advance(10 * GRACE)
    })
    t.equal(pool.max, 1, 'a max of one never grows')
  }
})

t.test('two requests waiting past the grace grow the pool by one (the oldest waiter decides)', async (t) => {
  const { clock, pool, grew } = setUp(4)
  clock.run(() => {
    pool.acquired(1, {}, false)
    pool.request(2)
    pool.request(3)
    clock.advance(GRACE)
  })
  t.equal(pool.max, 2, 'one more connection; the next request waits for it or the one in use')
  t.equal(grew(), 1)
})

t.test('the grace is read when a request starts waiting and when the pool looks again', async (t) => {
  let grace = 10
  const { clock, pool } = setUp(4, () => grace)
  clock.run(() => {
    pool.acquired(1, {}, false)
    grace = 50
    pool.request(2)
    clock.advance(49)
    t.equal(pool.max, 1, 'not before the grace read when the request came')
    clock.advance(1)
    t.equal(pool.max, 2, 'at it')
  })
})

t.test('a request still waiting after a growth went to an older waiter grows the pool again, once that open is done', async (t) => {
  const { clock, pool, grew } = setUp(4)
  const r1 = {}
  clock.run(() => {
    pool.acquired(1, r1, false)
    pool.request(2)
    clock.advance(1)
    pool.request(3)
    clock.advance(GRACE - 1)
    t.equal(pool.max, 2, 'the oldest waiter, past the grace behind a held connection, grew the pool')
    t.equal(pool.pendingCreates, 1, 'an open is under way')
    pool.opened(2, {})
    clock.advance(GRACE - 1)
    t.equal(pool.max, 2, 'not again within the grace')
    clock.advance(1)
    t.equal(pool.max, 3, 'request 3, still waiting behind held connections, grows the pool again')
    pool.opened(3, {})
    clock.advance(100)
    t.equal(pool.max, 3, 'and no further, once it is served')
  })
  t.equal(grew(), 2)
})

t.test('a request that grew the pool does not grow it again while the open it asked for is under way', async (t) => {
  const { clock, pool, grew } = setUp(4)
  clock.run(() => {
    pool.acquired(1, {}, false)
    pool.request(2)
    clock.advance(GRACE)
    t.equal(pool.max, 2)
    clock.advance(20 * GRACE)
    t.equal(pool.max, 2, 'a slow open is waited for, not multiplied')
    pool.opened(2, {})
    clock.advance(10 * GRACE)
  })
  t.equal(grew(), 1)
  t.equal(clock.pending, 0)
})

t.test('when connections close, the limit follows them down, never below one', async (t) => {
  const { clock, pool } = setUp(4)
  const resources = [{}, {}, {}]
  clock.run(() => {
    pool.max = 3
    resources.forEach((resource, index) => pool.acquired(index + 1, resource, false))
    clock.advance(5 * GRACE)
    pool.used = [{ resource: resources[0] }]
    pool.free = 1
    pool.emit('destroySuccess', 50, resources[2])
    t.equal(pool.max, 2, 'two connections left: a limit of two')
    pool.free = 0
    pool.emit('destroySuccess', 51, resources[1])
    t.equal(pool.max, 1)
    pool.used = []
    pool.emit('destroySuccess', 52, resources[0])
    t.equal(pool.max, 1, 'no connection left: still one')
    // A hold ended by the connection closing (held five graces) no longer counts as a slow query.
    const fresh = {}
    pool.acquired(61, fresh, false)
    pool.request(60)
    clock.advance(GRACE - 1)
    pool.release(fresh)
    pool.acquired(62, fresh, false)
    clock.advance(1)
    t.equal(pool.max, 1, 'a closed connection’s hold does not make the pool grow')
  })
})

t.test('closeIdleConnection closes the longest idle connection, as the reaper would', async (t) => {
  const closed: unknown[] = []
  const settled: string[] = []
  const pool = {
    destroyed: false,
    pending: 0,
    numPendingAcquires () { return this.pending },
    free: [
      { resource: 'oldest', settle: () => { settled.push('oldest') } },
      { resource: 'newer', settle: () => { settled.push('newer') } }
    ],
    _destroy: async (resource: unknown) => { closed.push(resource) }
  }
  t.equal(closeIdleConnection(pool), true, 'closes one')
  t.same(closed, ['oldest'], 'the oldest')
  t.same(settled, ['oldest'], 'its idle entry settled')
  t.equal(pool.free.length, 1, 'and taken off the free list')
  pool.pending = 1
  t.equal(closeIdleConnection(pool), false, 'not while a request of the pool waits for it')
  t.equal(pool.free.length, 1)
  pool.pending = 0
  pool.destroyed = true
  t.equal(closeIdleConnection(pool), false, 'not while the pool is being closed')
  pool.destroyed = false
  t.equal(closeIdleConnection(pool), true)
  t.same(closed, ['oldest', 'newer'])
  t.equal(closeIdleConnection(pool), false, 'none idle: nothing to close')
  t.same(closed, ['oldest', 'newer'])
})
