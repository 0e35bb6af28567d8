import { INSTANCE_LEASE_MS, type InstanceRegistry } from '../catalog/instance-registry.js'
import type { SiloEvents } from '../events.js'
import type { PoolCache } from './pool-cache.js'

/** How often an instance renews its claims (a new instance gets its share within about two of these). */
export const HEARTBEAT_MS = 2000

/**
 * Shares each budgeted server's connections out among the serving instances: heartbeats in the
 * catalog (InstanceRegistry) say what this instance may open on each such server, and the pool
 * cache is held to it (lowered: idle connections closed down to it; raised: waiters let in).
 * Until the first heartbeat answers, and from the moment no heartbeat has answered for a lease,
 * this instance opens nothing on a budgeted server: the others may be holding its share.
 */
export class BudgetSharing {
  readonly #registry: InstanceRegistry
  readonly #pools: PoolCache
  readonly #events: SiloEvents | undefined
  #timer: NodeJS.Timeout | undefined
  #beating: Promise<void> | undefined
  #lastBeat = 0
  #stopped = false

  constructor (deps: { registry: InstanceRegistry, pools: PoolCache, events?: SiloEvents }) {
    this.#registry = deps.registry
    this.#pools = deps.pools
    this.#events = deps.events
  }

  /**
   * Registers this instance and takes its first shares; then renews them every HEARTBEAT_MS, and
   * at once when a pool opens on a budgeted server it has no share of yet (one registered since).
   */
  async start (): Promise<void> {
    this.#pools.shareBudgets(() => { this.#beatNow() })
    await this.#beat()
    this.#schedule()
  }

  /** Stops renewing and leaves the registry (its claims with it). */
  async stop (): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#beating
    await this.#registry.leave().catch(() => {})
  }

  #schedule (): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => { this.#beatNow() }, HEARTBEAT_MS)
    this.#timer.unref()
  }

  /** A heartbeat now, unless one is under way (then its answer will do); the next one is due HEARTBEAT_MS after. */
  #beatNow (): void {
    if (this.#stopped || this.#beating !== undefined) return
    clearTimeout(this.#timer)
    this.#beating = this.#beat().catch((error: unknown) => {
      // The catalog did not answer: past the lease, the others count this instance dead.
      if (Date.now() - this.#lastBeat > INSTANCE_LEASE_MS) this.#pools.withdrawBudgetShares()
      this.#events?.emit('budget:heartbeat', { ok: false, error: error as Error })
    }).finally(() => {
      this.#beating = undefined
      this.#schedule()
    })
  }

  async #beat (): Promise<void> {
    const shares = await this.#registry.heartbeat((serverId) => this.#pools.openOn(serverId))
    this.#lastBeat = Date.now()
    for (const share of shares) this.#pools.setBudgetShare(share.serverId, share.capacity)
  }
}
