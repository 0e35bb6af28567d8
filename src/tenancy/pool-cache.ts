import type { TenantRecord } from '../catalog/catalog-store.js'
import { tenantUnavailable } from '../errors.js'
import type { BudgetedClient } from './budgeted-pg-client.js'
import type { BudgetStats } from './connection-budget.js'
import { ServerBudgets, type ServerBudgetStats } from './server-budgets.js'
import { closeIdleConnection, makeElastic } from './elastic-pool.js'
import { PoolSlots } from './pool-slots.js'
import { fingerprintOf, roomMakers, tarnPoolOf, tenantPoolConfig, type PoolEntry } from './pool-entry.js'
import { tenantKnex } from './tenant-knex.js'
import { Lease, type LeaseTerms, type PoolLease, type TurnCounts } from './pool-lease.js'

export type { PoolLease, TurnCounts } from './pool-lease.js'
import { SiloEvents, type EvictionReason } from '../events.js'

/** Bounds of a pool's grace before it grows (see makeElastic). */
const GROW_GRACE_FLOOR_MS = 5
const GROW_GRACE_MAX_MS = 200

export interface PoolCacheOptions {
  // Each setting is named as in Config (and its environment variable: TENANT_POOL_MAX → tenantPoolMax).
  /** Connections per tenant pool. */
  tenantPoolMax: number
  /** Tenant pools kept open at once; past this, one leaves (W-TinyLFU, see PoolSlots). */
  tenantPoolsMax: number
  /**
   * Connections open to one server's tenant databases at once, across all pools (retiring ones
   * included), for a server without a budget of its own.
   */
  connectionBudget: number
  /** Openers waiting for a budget slot of one server at once; more get TENANT_BUSY straight away. */
  connectionQueueMax: number
  /** Connections being opened on one server at once (see ServerBudgets); 4 unless given. */
  tenantConnectConcurrency?: number
  /** An idle connection is closed after this long. */
  tenantIdleTimeoutMs: number
  /** Longest wait for a request's turn on its pool, and then for a connection (pool slot or budget slot), before TENANT_BUSY. */
  tenantAcquireTimeoutMs: number
  /** Requests one pool serves at once; more wait their turn (see Lease). 0: no limit. */
  tenantRequestsMax: number
  /**
   * The shortest a request waits for one of its tenant's connections before the pool may grow
   * (default 5 ms; the wait is otherwise twice an open's typical time, at most 200 ms). Tests
   * that assert "quick queries never grow a pool" raise it so that a loaded machine's pauses do
   * not count as slow queries.
   */
  growGraceFloorMs?: number
  events?: SiloEvents
}

export interface PoolCacheStats {
  pools: number
  retiring: number
  leases: number
  /** Requests waiting for their turn on a pool (see Lease); `turns`, those that never got it. */
  waiting: number
  turns: TurnCounts
  opened: number
  evicted: number
  /** Times a pool grew past the connections it had, because a request waited longer than an open takes. */
  grown: number
  connections: { used: number, free: number, pendingAcquires: number, pendingCreates: number }
  /** The servers' budgets summed. */
  budget: BudgetStats
  /** Each server's budget, and its connections being opened now (servers this instance has opened a pool for). */
  servers: ServerBudgetStats[]
}

/**
 * One Knex pool per tenant, in slots bounded in pools (PoolSlots: a newcomer takes a frequent
 * tenant's place only once it is asked for more often), all drawing connections from one
 * ConnectionBudget per server. Creating a Knex instance opens no connection (pools have min 0), so
 * `acquire` is synchronous and concurrent first requests for a tenant necessarily share one
 * pool. A pool pushed out of the slots is retired, not killed: it is destroyed once the last
 * request holding a lease on it has released it. When connections run short, idle pools
 * (no lease) are retired least recently used first, so hot tenants keep theirs. A pool serves
 * `tenantRequestsMax` requests at once; the others wait their turn, and leave with their client (Lease).
 */
export class PoolCache {
  readonly #options: PoolCacheOptions
  readonly #pools: PoolSlots<PoolEntry>
  readonly #retiringPools = new Set<PoolEntry>()
  readonly #destroying = new Set<Promise<void>>()
  readonly #budgets: ServerBudgets
  readonly events: SiloEvents
  readonly #terms: LeaseTerms
  #opened = 0
  #evicted = 0
  #closed = false
  #evictReason: EvictionReason = 'lru'
  /** Moving average of the time to open a tenant connection (ms). */
  #typicalOpenMs = 10
  #grown = 0

  constructor (options: PoolCacheOptions) {
    this.#options = options
    this.events = options.events ?? new SiloEvents()
    this.#budgets = new ServerBudgets({
      defaultCapacity: options.connectionBudget,
      queueMax: options.connectionQueueMax,
      connectConcurrency: options.tenantConnectConcurrency ?? 4,
      waitMs: options.tenantAcquireTimeoutMs,
      observer: {
        opened: (slug, durationMs, server) => {
          this.#typicalOpenMs = 0.8 * this.#typicalOpenMs + 0.2 * durationMs
          this.events.emit('connection:opened', { slug, server, durationMs })
        },
        failed: (slug, error, server) => { this.events.emit('connection:failed', { slug, server, error }) }
      },
      onPressure: (serverId) => { this.#reclaimIdle(serverId) }
    })
    this.#pools = new PoolSlots<PoolEntry>(options.tenantPoolsMax, (entry) => { this.#retire(entry) })
    this.#terms = {
      admitted: options.tenantRequestsMax === 0 ? Infinity : options.tenantRequestsMax,
      waitMs: options.tenantAcquireTimeoutMs,
      turns: { left: 0, timedOut: 0 },
      released: (leased) => {
        const entry = leased as PoolEntry // every lease of this cache is on one of its entries
        if (entry.leases === 0 && entry.retired) this.#destroy(entry)
        // Openers are waiting for a slot of its server, and the request that ended may have left a connection idle.
        else if (this.#budgets.waiting(entry.serverId)) this.#reclaimIdle(entry.serverId)
      }
    }
  }

  /** A lease on the tenant's pool, admitted or waiting its turn (`whenAdmitted`); the caller releases it when its request is done or gone. */
  acquire (tenant: TenantRecord): PoolLease {
    if (this.#closed) throw tenantUnavailable('The service is shutting down')
    const fingerprint = fingerprintOf(tenant)
    let entry = this.#pools.get(tenant.id)
    if (entry === undefined || entry.fingerprint !== fingerprint) {
      // A pool replaced (the tenant moved, or its credentials changed) is retired as removed; a
      // new one may push another out.
      if (entry !== undefined) this.evict(tenant.id)
      const opened = this.#open(tenant, fingerprint)
      this.#withReason('lru', () => { this.#pools.set(tenant.id, opened) })
      entry = opened
    }
    return new Lease(entry, this.#terms)
  }

  /** Retire a tenant's pool (dropped, suspended, credentials changed); in-flight work finishes. */
  evict (tenantId: string): void {
    const entry = this.#pools.delete(tenantId)
    if (entry !== undefined) this.#withReason('removed', () => { this.#retire(entry) })
  }

  has (tenantId: string): boolean {
    return this.#pools.has(tenantId)
  }

  /** Tenant ids of the cached pools, most recently used first. */
  keys (): string[] {
    return [...this.#pools.keys()]
  }

  /** One tenant's cached pool, read without counting as a use (the admin console's live figures); null when none is cached. */
  tenantStats (tenantId: string): { leases: number, used: number, free: number, pending: number } | null {
    const entry = this.#pools.peek(tenantId)
    if (entry === undefined) return null
    const { pool } = entry
    return { leases: entry.leases, used: pool.numUsed(), free: pool.numFree(), pending: pool.numPendingAcquires() }
  }

  stats (): PoolCacheStats {
    const connections = { used: 0, free: 0, pendingAcquires: 0, pendingCreates: 0 }
    let leases = 0
    let waiting = 0
    for (const { pool, leases: held, waiting: queued } of [...this.#pools.values(), ...this.#retiringPools]) {
      leases += held
      waiting += queued?.size ?? 0
      connections.used += pool.numUsed()
      connections.free += pool.numFree()
      connections.pendingAcquires += pool.numPendingAcquires()
      connections.pendingCreates += pool.numPendingCreates()
    }
    return {
      pools: this.#pools.size,
      retiring: this.#retiringPools.size,
      leases,
      waiting,
      turns: { ...this.#terms.turns },
      opened: this.#opened,
      evicted: this.#evicted,
      grown: this.#grown,
      connections,
      budget: this.#budgets.total(),
      servers: this.#budgets.byServer()
    }
  }

  /**
   * A budgeted server's capacity is this instance's share of it from now on (see BudgetSharing);
   * `unshared` is told when a pool opens on one it has no share of yet.
   */
  shareBudgets (unshared: () => void): void {
    this.#budgets.share(unshared)
  }

  /** This instance's share of a budgeted server: lowered, its idle connections are closed down to it. */
  setBudgetShare (serverId: string, capacity: number): void {
    this.#budgets.setShare(serverId, capacity)
    for (let over = this.#budgets.openOn(serverId) - capacity; over > 0; over--) this.#reclaimIdle(serverId)
  }

  /**
   * Gives up every share of a budgeted server (no heartbeat for a lease: the others count this
   * instance dead and may use its share) and closes its idle connections there. Called again at
   * each failed heartbeat, so a connection in use when the share went is closed once it is idle.
   */
  withdrawBudgetShares (): void {
    for (const serverId of this.#budgets.sharedServers()) this.setBudgetShare(serverId, 0)
  }

  /** Connections open on the server now. */
  openOn (serverId: string): number {
    return this.#budgets.openOn(serverId)
  }

  /** Retires every pool and waits until all of them are destroyed. */
  async close (): Promise<void> {
    this.#closed = true
    const entries = this.#pools.clear()
    this.#withReason('closing', () => { for (const entry of entries) this.#retire(entry) })
    for (const lease of [...this.#retiringPools].flatMap(({ waiting }) => [...waiting ?? []])) lease.refuse(tenantUnavailable('The service is shutting down'))
    while (this.#destroying.size > 0 || this.#retiringPools.size > 0) {
      if (this.#destroying.size > 0) await Promise.allSettled([...this.#destroying])
      else await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  #open (tenant: TenantRecord, fingerprint: string): PoolEntry {
    const slug = tenant.slug
    const config = tenantPoolConfig(tenant, this.#budgets.of(tenant.server).client, this.#options)
    const db = tenantKnex(config)
    ;(db.client as BudgetedClient).tenant = slug
    const pool = tarnPoolOf(db)
    makeElastic(pool, {
      max: this.#options.tenantPoolMax,
      // A request waits for one of the tenant's connections up to twice the time opening another
      // takes: an extra backend costs the server too, and under a tight budget another tenant's pool.
      graceMs: () => Math.min(GROW_GRACE_MAX_MS, Math.max(this.#options.growGraceFloorMs ?? GROW_GRACE_FLOOR_MS, 2 * this.#typicalOpenMs)),
      grew: () => { this.#grown++ },
      room: () => !this.#budgets.waiting(tenant.server.id)
    })
    this.#opened++
    this.events.emit('pool:opened', { tenantId: tenant.id, slug })
    return { tenantId: tenant.id, serverId: tenant.server.id, slug, fingerprint, db, pool, leases: 0, waiting: undefined, retired: false, lastUsed: 0 }
  }

  /** Runs `fn` (which may dispose entries) with the eviction reason the dispose hook reports. */
  #withReason (reason: EvictionReason, fn: () => void): void {
    const previous = this.#evictReason
    this.#evictReason = reason
    try {
      fn()
    } finally {
      this.#evictReason = previous
    }
  }

  /**
   * Under connection pressure on a server, gives one of its connections back to its budget,
   * cheapest first: an idle connection of a retired pool (it will serve no new request); else the
   * least asked-for pool that no request holds (least recently used among equals), retired whole
   * (so hot tenants keep theirs); else an idle connection of the least asked-for pool still in
   * use, which would otherwise stay open until its idle timeout while the waiter times out. Pools
   * of other servers are not touched: their slots are not this server's.
   */
  #reclaimIdle (serverId: string): void {
    for (const entry of this.#retiringPools) {
      if (entry.serverId === serverId && closeIdleConnection(entry.pool)) return
    }
    const { unheld, held } = roomMakers(this.#pools, serverId)
    if (unheld !== undefined) {
      this.#pools.delete(unheld.tenantId)
      this.#withReason('idle', () => { this.#retire(unheld) })
      return
    }
    if (held !== undefined) closeIdleConnection(held.pool)
  }

  #retire (entry: PoolEntry): void {
    if (entry.retired) return
    entry.retired = true
    this.#evicted++
    this.#retiringPools.add(entry)
    this.events.emit('pool:evicted', { tenantId: entry.tenantId, slug: entry.slug, reason: this.#evictReason })
    if (entry.leases === 0) this.#destroy(entry)
  }

  #destroy (entry: PoolEntry): void {
    const done = entry.db.destroy()
      .catch(() => {})
      .finally(() => {
        this.#retiringPools.delete(entry)
        this.#destroying.delete(done)
      })
    this.#destroying.add(done)
  }
}
