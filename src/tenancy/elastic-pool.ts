/** The parts of knex's tarn pool (tarn 3) that an elastic limit reads and drives. */
export interface ElasticTarnPool {
  max: number
  numUsed: () => number
  numFree: () => number
  numPendingAcquires: () => number
  numPendingCreates: () => number
  /** The connections in use (what tarn's `numUsed` counts). */
  used: Array<{ resource: unknown }>
  on: (event: string, listener: (...args: unknown[]) => void) => void
  /** Tarn's own "serve waiters or open a connection" step; it runs on every acquire and release. */
  _tryAcquireOrCreate: () => void
}

/** What tarn 3 keeps of an idle connection, oldest first, and how it closes one (what its reaper does). */
export interface ReapablePool {
  destroyed?: boolean
  numPendingAcquires: () => number
  free: Array<{ resource: unknown, settle: () => void }>
  _destroy: (resource: unknown) => Promise<unknown>
}

/**
 * Closes the pool's longest idle connection now, as its reaper would at the idle timeout; false
 * when it has none, or a request of its own is about to take it, or the pool is being closed.
 */
export function closeIdleConnection (pool: ReapablePool): boolean {
  if (pool.destroyed === true || pool.numPendingAcquires() > 0) return false
  const idle = pool.free.shift()
  if (idle === undefined) return false
  idle.settle()
  void pool._destroy(idle.resource)
  return true
}

export interface ElasticOptions {
  /** The most connections the pool may grow to (TENANT_POOL_MAX). */
  max: number
  /** How long a request waits for one of the pool's connections before the pool may grow (about an open's time). */
  graceMs: () => number
  /** Told each time the pool grows. */
  grew?: () => void
  /**
   * Whether the pool may take another of its server's connections now: not while other tenants'
   * openers wait for a slot of that budget (a growth would queue behind them, or take the slot one
   * of them waits for). The pool stays at the connections it has and its waiters keep watching:
   * one connection per tenant until no one waits. A full budget with idle connections elsewhere is
   * room (the growth closes the least asked-for idle pool).
   */
  room?: () => boolean
}

/** When a connection was last taken from its pool (performance.now()); kept on the connection. */
const heldSince = Symbol('silo.heldSince')
type Stamped = { [heldSince]?: number }

/**
 * Requests queued per connection past which a pool grows even though each query is quick
 * (TENANT_REQUESTS_MAX lets this many a connection onto a pool by default, so its queue can get that deep).
 */
const DEEP_QUEUE = 8

/**
 * Makes a tenant pool grow on demand. Knex's pool opens a new connection whenever a request
 * finds none free, up to its max; a query takes well under a millisecond and an open several
 * (tens on a small VM), so a busy moment would open connections that only add PostgreSQL
 * backends competing for the server's cores, and, under a tight budget, cost other tenants
 * their pools. Here the pool starts with a limit of one connection and raises it by one when
 * its oldest waiting request has waited `graceMs` without being served and either a connection
 * has been held that long (a slow query or a transaction) or the queue was deep on average over
 * that time (a tenant hot enough to need more than one backend, not a moment's pile-up of quick
 * queries: requests spread at random over a few tenants queue eight deep now and then, and a
 * backend more for each such moment only adds a backend to the server's busy cores). It grows
 * once per grace at most, and not while an open is under way or a connection is free (either
 * serves a waiter first). When its connections are closed (idle timeout, eviction) the limit
 * follows them down.
 *
 * One timer per pool, armed while requests wait: a request that waits costs a timestamp, not a
 * timer of its own (this is every queued request's path).
 */
export function makeElastic (pool: ElasticTarnPool, options: ElasticOptions): void {
  pool.max = 1
  /** Requests waiting for a connection, and since when: oldest first (a Map keeps insertion order). */
  const waiting = new Map<number, number>()
  /** The queue's length integrated over time (request-ms) since `windowStart`: its mean over the last grace. */
  let area = 0
  let windowStart = 0
  let lastChange = 0
  let armed = false
  const fits = (): number => pool.numUsed() + pool.numFree() + pool.numPendingCreates()
  /** Called just before the queue's length changes, and at each look. */
  const account = (now: number): void => {
    area += waiting.size * (now - lastChange)
    lastChange = now
  }
  const heldLongerThan = (ms: number, now: number): boolean => {
    const since = now - ms
    for (const { resource } of pool.used) {
      const at = (resource as Stamped)[heldSince]
      if (at !== undefined && at <= since) return true
    }
    return false
  }

  const arm = (ms: number): void => {
    armed = true
    setTimeout(check, ms).unref()
  }
  /** While requests wait: grow once the oldest has waited the grace, then look again a grace later. */
  const check = (): void => {
    armed = false
    if (pool.max >= options.max) return
    const oldest: number | undefined = waiting.values().next().value
    if (oldest === undefined) return
    const now = performance.now()
    const grace = options.graceMs()
    if (now - oldest < grace) {
      arm(grace - (now - oldest))
      return
    }
    account(now)
    const queued = area / Math.max(1e-3, now - windowStart)
    area = 0
    windowStart = now
    const opening = pool.numPendingCreates() > 0 || pool.numFree() > 0
    const needed = heldLongerThan(grace, now) || queued >= DEEP_QUEUE * Math.max(1, pool.numUsed())
    if (!opening && needed && options.room?.() !== false) {
      pool.max++
      options.grew?.()
      pool._tryAcquireOrCreate()
    }
    arm(grace)
  }

  pool.on('acquireRequest', (eventId) => {
    // Served at once (a free connection, or room to open one), or the pool cannot grow: nothing to watch.
    if (pool.numFree() > 0 || fits() < pool.max || pool.max >= options.max) return
    const now = performance.now()
    account(now)
    if (!armed) {
      // The first waiter since the pool last looked: the mean is taken from now.
      area = 0
      windowStart = now
      arm(options.graceMs())
    }
    waiting.set(eventId as number, now)
  })
  pool.on('acquireSuccess', (eventId, resource) => {
    // On the connection itself, not in a map of this pool's: nothing to undo at its release.
    const now = performance.now()
    ;(resource as Stamped)[heldSince] = now
    if (waiting.size > 0 && waiting.has(eventId as number)) {
      account(now)
      waiting.delete(eventId as number)
    }
  })
  pool.on('acquireFail', (eventId) => {
    if (waiting.has(eventId as number)) {
      account(performance.now())
      waiting.delete(eventId as number)
    }
  })
  pool.on('destroySuccess', () => {
    pool.max = Math.max(1, Math.min(pool.max, fits()))
  })
}
