/** The parts of knex's tarn pool (tarn 3) that an elastic limit reads and drives. */
interface TarnPool {
  max: number
  numUsed: () => number
  numFree: () => number
  numPendingAcquires: () => number
  numPendingCreates: () => number
  on: (event: string, listener: (...args: unknown[]) => void) => void
  /** Tarn's own "serve waiters or open a connection" step; it runs on every acquire and release. */
  _tryAcquireOrCreate: () => void
}

/** What tarn 3 keeps of an idle connection, oldest first, and how it closes one (what its reaper does). */
interface ReapablePool {
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

/** Requests queued per connection past which a pool grows even though each query is quick. */
const DEEP_QUEUE = 8

/**
 * Makes a tenant pool grow on demand. Knex's pool opens a new connection whenever a request
 * finds none free, up to its max; a query takes well under a millisecond and an open several
 * (tens on a small VM), so a busy moment would open connections that only add PostgreSQL
 * backends competing for the server's cores, and, under a tight budget, cost other tenants
 * their pools. Here the pool starts with a limit of one connection and raises it by one when a
 * request has waited `graceMs` without being served and either a connection has been held
 * that long (a slow query or a transaction) or the queue is deep (a tenant hot enough to need
 * more than one backend). When its connections are closed (idle timeout, eviction) the limit
 * follows them down.
 */
export function makeElastic (pool: TarnPool, options: ElasticOptions): void {
  pool.max = 1
  const waiting = new Set<number>()
  /** Connections in use, and since when. */
  const held = new Map<unknown, number>()
  const fits = (): number => pool.numUsed() + pool.numFree() + pool.numPendingCreates()
  const heldLongerThan = (ms: number): boolean => {
    const since = performance.now() - ms
    for (const at of held.values()) if (at <= since) return true
    return false
  }

  /**
   * Checks, after a grace and again each grace while the request waits, whether the pool should
   * grow for it. The connection a growth opens goes to the oldest waiter, not necessarily to the
   * request that grew the pool: one still waiting after its growth goes on watching, and grows
   * again once no open is under way and no connection is free (either would serve a waiter first).
   */
  const watch = (eventId: number, grace: number, grown: boolean): void => {
    const timer = setTimeout(() => {
      if (!waiting.has(eventId) || pool.max >= options.max) return
      const served = grown && (pool.numPendingCreates() > 0 || pool.numFree() > 0)
      if (!served && options.room?.() !== false && (heldLongerThan(grace) || pool.numPendingAcquires() >= DEEP_QUEUE * Math.max(1, pool.numUsed()))) {
        pool.max++
        options.grew?.()
        pool._tryAcquireOrCreate()
        watch(eventId, grace, true)
      } else {
        watch(eventId, grace, grown)
      }
    }, grace)
    timer.unref()
  }

  pool.on('acquireRequest', (eventId) => {
    waiting.add(eventId as number)
    if (pool.numFree() > 0 || fits() < pool.max || pool.max >= options.max) return
    watch(eventId as number, options.graceMs(), false)
  })
  pool.on('acquireSuccess', (eventId, resource) => {
    waiting.delete(eventId as number)
    held.set(resource, performance.now())
  })
  pool.on('acquireFail', (eventId) => { waiting.delete(eventId as number) })
  pool.on('release', (resource) => { held.delete(resource) })
  pool.on('destroySuccess', (_eventId, resource) => {
    held.delete(resource)
    pool.max = Math.max(1, Math.min(pool.max, fits()))
  })
}
