/** The parts of knex's tarn pool (tarn 3) that an elastic limit reads and drives. */
interface TarnPool {
  max: number
  numUsed: () => number
  numFree: () => number
  numPendingCreates: () => number
  on: (event: string, listener: (eventId: number) => void) => void
  /** Tarn's own "serve waiters or open a connection" step; it runs on every acquire and release. */
  _tryAcquireOrCreate: () => void
}

export interface ElasticOptions {
  /** The most connections the pool may grow to (TENANT_POOL_MAX). */
  max: number
  /** How long a request waits for one of the pool's connections before the pool may grow (about an open's time). */
  graceMs: () => number
  /** Told each time the pool grows. */
  grew?: () => void
}

/**
 * Makes a tenant pool grow on demand. Knex's pool opens a new connection whenever a request
 * finds none free, up to its max; a query takes well under a millisecond and an open several
 * (tens on a small VM), so a busy moment would open connections that only add PostgreSQL
 * backends competing for the server's cores, and, under a tight budget, cost other tenants
 * their pools. Here the pool starts with a limit of one connection and raises it by one only
 * when a request has waited `graceMs` (on the order of an open's time) without being served;
 * when its connections are closed (idle timeout, eviction) the limit follows them down.
 */
export function makeElastic (pool: TarnPool, options: ElasticOptions): void {
  pool.max = 1
  const waiting = new Set<number>()
  const fits = (): number => pool.numUsed() + pool.numFree() + pool.numPendingCreates()

  pool.on('acquireRequest', (eventId) => {
    waiting.add(eventId)
    if (pool.numFree() > 0 || fits() < pool.max || pool.max >= options.max) return
    const timer = setTimeout(() => {
      if (!waiting.has(eventId) || pool.max >= options.max) return
      pool.max++
      options.grew?.()
      pool._tryAcquireOrCreate()
    }, options.graceMs())
    timer.unref()
  })
  const served = (eventId: number): void => { waiting.delete(eventId) }
  pool.on('acquireSuccess', served)
  pool.on('acquireFail', served)
  pool.on('destroySuccess', () => { pool.max = Math.max(1, Math.min(pool.max, fits())) })
}
