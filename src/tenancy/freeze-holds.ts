import type { HostResolver } from '../catalog/host-resolver.js'
import type { TenantRecord } from '../catalog/catalog-store.js'
import { SiloError } from '../errors.js'

/** How often a held host's cached answer is looked at (the feed replaces it at the switch). */
const CHECK_MS = 5
/**
 * How often it is read from the catalog regardless, starting at once (the feed may be down, or the
 * freeze lapsed: a lapse is announced by nobody, and the cached answer still says frozen).
 */
const REFRESH_MS = 100

interface Waiter {
  resolve: (tenant: TenantRecord | null) => void
  reject: (error: Error) => void
  deadline: number
}

interface Hold {
  tenantId: string
  waiters: Set<Waiter>
  timer: NodeJS.Timeout
  lastRefresh: number
  refreshing: boolean
}

/** A request held for MOVE_HOLD_MS without the freeze ending: 503 TENANT_UNAVAILABLE, to retry in a second. */
export const moveHoldExpired = (): SiloError =>
  new SiloError('TENANT_UNAVAILABLE', 'This tenant is being moved to another server; retry shortly', { retryAfter: 1 })

/**
 * Requests for a tenant whose writes a move has frozen wait here, not fail: each held host is
 * watched by one timer (however many requests wait on it) until its answer is not frozen any
 * more (the switch, announced through the catalog feed; or the freeze lifted or lapsed, read
 * from the catalog), and its waiters go on with that fresh answer, on the new server. A waiter
 * still held after `holdMs` gets 503 TENANT_UNAVAILABLE with `Retry-After`.
 */
export class FreezeHolds {
  readonly #resolver: HostResolver
  readonly #holdMs: number
  readonly #holds = new Map<string, Hold>()

  constructor (resolver: HostResolver, holdMs: number) {
    this.#resolver = resolver
    this.#holdMs = holdMs
  }

  /** Requests held now, for metrics and tests. */
  get waiting (): number {
    let count = 0
    for (const hold of this.#holds.values()) count += hold.waiters.size
    return count
  }

  /** Resolves with `host`'s answer once it is not frozen (null: the host is no tenant's now). */
  async wait (tenant: TenantRecord, host: string): Promise<TenantRecord | null> {
    return await new Promise((resolve, reject) => {
      let hold = this.#holds.get(host)
      if (hold === undefined) {
        const created: Hold = { tenantId: tenant.id, waiters: new Set(), timer: setInterval(() => { this.#check(host, created) }, CHECK_MS), lastRefresh: 0, refreshing: false }
        this.#holds.set(host, hold = created)
      }
      hold.waiters.add({ resolve, reject, deadline: performance.now() + this.#holdMs })
    })
  }

  #check (host: string, hold: Hold): void {
    const now = performance.now()
    for (const waiter of hold.waiters) {
      if (waiter.deadline <= now) {
        hold.waiters.delete(waiter)
        waiter.reject(moveHoldExpired())
      }
    }
    if (hold.waiters.size === 0) {
      this.#end(host, hold)
      return
    }
    const cached = this.#resolver.cached(host)
    if (cached !== undefined && (cached === null || !cached.frozen)) {
      this.#release(host, hold, cached)
      return
    }
    if (hold.refreshing || (cached !== undefined && now - hold.lastRefresh < REFRESH_MS)) return
    hold.refreshing = true
    hold.lastRefresh = now
    if (cached !== undefined) this.#resolver.invalidateTenant(hold.tenantId)
    this.#resolver.resolve(host).then((fresh) => {
      if (fresh === null || !fresh.frozen) this.#release(host, hold, fresh)
    }, () => {
      // The catalog does not answer: keep waiting (until each waiter's deadline).
    }).finally(() => { hold.refreshing = false })
  }

  #release (host: string, hold: Hold, tenant: TenantRecord | null): void {
    this.#end(host, hold)
    for (const waiter of hold.waiters) waiter.resolve(tenant)
    hold.waiters.clear()
  }

  #end (host: string, hold: Hold): void {
    clearInterval(hold.timer)
    if (this.#holds.get(host) === hold) this.#holds.delete(host)
  }
}
