import { LRUCache } from 'lru-cache'
import { unreadableCredential, type CatalogStore, type TenantRecord } from './catalog-store.js'
import { catalogUnavailable, tenantUnavailable, type SiloError } from '../errors.js'

/** A known host's answer is served past its TTL while the feed keeps it exact (HELD), not otherwise (FRESH); constants, as this is every request's path. */
const HELD = { allowStale: true } as const
const FRESH = {} as const

export interface HostResolverOptions {
  /** How long a host → tenant answer is trusted before the catalog is asked again. */
  ttlMs: number
  /** Most hosts remembered, for known and for unknown hosts each. */
  max: number
}

export interface ResolverStats {
  hits: number
  misses: number
  negativeHits: number
  staleServed: number
  cached: number
  negativeCached: number
  /** Hosts in the domain index; null while there is none (no listener, or it is reconnecting). */
  indexed: number | null
}

/**
 * Host → tenant, through the catalog, with two bounded LRU caches: known hosts (TTL) and
 * unknown hosts (the same TTL), so a flood of random hosts can neither grow memory nor
 * reach the catalog more than once per host and TTL, and cannot push known tenants out.
 * While the catalog feed is up (a domain index is installed) a known host's answer does not
 * expire: the feed invalidates it at every change of its tenant or domain, and the listener
 * preloads the answers of up to `max` hosts as it installs the index, so that a first request
 * needs no catalog round trip. The TTL is the rule again whenever the feed is down.
 * Concurrent look-ups of one host share one catalog query. When the catalog fails, a host
 * seen before keeps its last answer (stale) and an unseen host gets CATALOG_UNAVAILABLE,
 * never a 404: "not found" is only said when the catalog said so.
 *
 * With a domain index (every host in the catalog, kept exact by the CatalogListener), a host
 * outside it is answered "unknown" without a catalog query or a cache entry. The index may
 * hold more than the catalog (a host added here before its notification arrives, a host whose
 * removal the listener has not confirmed yet), never less: forgetting a host leaves it indexed,
 * and only the listener takes it out (unindexHost), once the catalog has said it is gone. A
 * removal announced in a transaction's notifications may be followed by the host's return in
 * the same transaction (an UPDATE is announced as a delete and an insert).
 *
 * Any invalidation bumps a generation: a look-up that started before it still answers its own
 * request (it read the catalog concurrently with the change) but its answer is not cached.
 *
 * A tenant whose stored credential this process cannot decrypt is that tenant's fault, not the
 * catalog's: TENANT_UNAVAILABLE (the reason, without a secret, goes to the log as its cause),
 * remembered like an answer for the TTL so such a host costs one catalog query per TTL. The
 * record cached before is not served instead: the row just read may hold a new credential, and
 * this process cannot tell a rekey (same password) from a new password, so a remembered one
 * would outlive the catalog's word for it. (A suspended tenant still gets its 403: only a
 * tenant that would be served needs its credential.)
 */
export class HostResolver {
  readonly #catalog: CatalogStore
  /** Expired entries stay (noDeleteOnStaleGet) so they can be served when the catalog is down. */
  readonly #known: LRUCache<string, TenantRecord>
  /**
   * The hosts of #known by tenant id, expired entries included: the cache's own iterators skip
   * those, and an expired entry an invalidation missed would be served, outdated, during the
   * next catalog outage. Kept in step by #known's dispose (evictions, deletes, overwrites).
   */
  readonly #hostsOf = new Map<string, Set<string>>()
  readonly #unknown: LRUCache<string, true>
  /** Hosts whose tenant's credential cannot be decrypted here, with the tenant and the answer. */
  readonly #unreadable: LRUCache<string, { tenantId: string, error: SiloError }>
  readonly #inflight = new Map<string, Promise<TenantRecord | null>>()
  readonly #stats = { hits: 0, misses: 0, negativeHits: 0, staleServed: 0 }
  #domains: Set<string> | null = null
  #generation = 0

  constructor (catalog: CatalogStore, options: HostResolverOptions) {
    const ttl = Math.max(1, options.ttlMs)
    this.#catalog = catalog
    this.#unknown = new LRUCache<string, true>({ max: options.max, ttl })
    this.#unreadable = new LRUCache<string, { tenantId: string, error: SiloError }>({ max: options.max, ttl })
    this.#known = new LRUCache<string, TenantRecord>({
      max: options.max,
      ttl,
      noDeleteOnStaleGet: true,
      dispose: (tenant, host) => { this.#unlink(tenant.id, host) }
    })
  }

  /**
   * The answer for `host` if it is known without asking the catalog (a cached tenant, or a host
   * known to be unknown), else undefined. Synchronous: the hot path of every request.
   */
  cached (host: string): TenantRecord | null | undefined {
    if ((this.#domains !== null && !this.#domains.has(host)) || this.#unknown.get(host) === true) {
      this.#stats.negativeHits++
      return null
    }
    const tenant = this.#known.get(host, this.#domains !== null ? HELD : FRESH)
    if (tenant !== undefined) this.#stats.hits++
    return tenant
  }

  /** The cached tenant of a known host, without counting a hit; undefined when not cached (or invalidated). */
  peek (host: string): TenantRecord | undefined {
    return this.#known.get(host, this.#domains !== null ? HELD : FRESH)
  }

  /**
   * Answers known before anyone asks (CatalogListener, as it installs the index): each host's
   * tenant, but for an active tenant whose credential cannot be decrypted here (its first request
   * looks it up and reports that). The feed keeps them exact from then on.
   */
  preload (hosts: Array<{ host: string, tenant: TenantRecord }>): void {
    for (const { host, tenant } of hosts) {
      if (tenant.status === 'active' && unreadableCredential(tenant) !== undefined) continue
      this.#known.set(host, tenant)
      this.#link(tenant.id, host)
    }
  }

  /** The tenant serving `host` (already normalized), or null when the catalog has none. */
  async resolve (host: string): Promise<TenantRecord | null> {
    const cached = this.cached(host)
    if (cached !== undefined) return cached
    const unreadable = this.#unreadable.get(host)
    if (unreadable !== undefined) throw unreadable.error
    let pending = this.#inflight.get(host)
    if (pending === undefined) {
      const started = this.#load(host)
      pending = started
      this.#inflight.set(host, started)
      void started.finally(() => {
        if (this.#inflight.get(host) === started) this.#inflight.delete(host)
      }).catch(() => {})
    }
    return await pending
  }

  async #load (host: string): Promise<TenantRecord | null> {
    const generation = this.#generation
    this.#stats.misses++
    let tenant: TenantRecord | null
    try {
      tenant = await this.#catalog.tenantByHost(host)
    } catch (error) {
      const stale = this.#known.get(host, { allowStale: true })
      if (stale !== undefined) {
        this.#stats.staleServed++
        return stale
      }
      throw catalogUnavailable(error)
    }
    // Only a tenant that would be served needs its credential: a suspended one still gets its 403.
    const problem = tenant?.status === 'active' ? unreadableCredential(tenant) : undefined
    if (tenant !== null && problem !== undefined) {
      const error = tenantUnavailable('The tenant database is unavailable', problem)
      if (generation === this.#generation) {
        this.#known.delete(host)
        this.#unreadable.set(host, { tenantId: tenant.id, error })
      }
      throw error
    }
    if (generation === this.#generation) {
      this.#unreadable.delete(host)
      if (tenant === null) {
        this.#known.delete(host)
        this.#unknown.set(host, true)
      } else {
        this.#known.set(host, tenant)
        this.#link(tenant.id, host)
      }
    }
    return tenant
  }

  /** Forget what is known of a host (after its domain was added here or announced by the catalog). */
  invalidateHost (host: string): void {
    this.#invalidate()
    this.#known.delete(host)
    this.#unknown.delete(host)
    this.#unreadable.delete(host)
    this.#domains?.add(host)
  }

  /**
   * The host was removed from the catalog, or announced so: forget every answer for it. It stays
   * in the domain index, so it is looked up (and found unknown) until unindexHost.
   */
  forgetHost (host: string): void {
    this.#invalidate()
    this.#known.delete(host)
    this.#unknown.delete(host)
    this.#unreadable.delete(host)
  }

  /** The catalog confirmed that the host is gone (see CatalogListener): out of the domain index. */
  unindexHost (host: string): void {
    this.#domains?.delete(host)
  }

  /** Every host of the catalog, or null to go without an index (look every unknown host up). */
  setDomainIndex (hosts: Set<string> | null): void {
    this.#domains = hosts
  }

  /** Forget every host of a tenant (after its status, credentials or schema version changed). */
  invalidateTenant (tenantId: string): void {
    this.#invalidate()
    const hosts = this.#hostsOf.get(tenantId)
    // A copy: each delete takes its host out of the set (dispose).
    if (hosts !== undefined) for (const host of [...hosts]) this.#known.delete(host)
    for (const [host, failure] of this.#unreadable.entries()) {
      if (failure.tenantId === tenantId) this.#unreadable.delete(host)
    }
  }

  /** The catalog's credential key changed: credentials unreadable a moment ago may be readable now. */
  forgetUnreadable (): void {
    this.#invalidate()
    this.#unreadable.clear()
  }

  clear (): void {
    this.#invalidate()
    this.#known.clear()
    this.#unknown.clear()
    this.#unreadable.clear()
  }

  stats (): ResolverStats {
    return { ...this.#stats, cached: this.#known.size, negativeCached: this.#unknown.size, indexed: this.#domains?.size ?? null }
  }

  #link (tenantId: string, host: string): void {
    const hosts = this.#hostsOf.get(tenantId)
    if (hosts === undefined) this.#hostsOf.set(tenantId, new Set([host]))
    else hosts.add(host)
  }

  #unlink (tenantId: string, host: string): void {
    const hosts = this.#hostsOf.get(tenantId)
    hosts?.delete(host)
    if (hosts?.size === 0) this.#hostsOf.delete(tenantId)
  }

  /** Look-ups under way may have read the old state: they answer their requests, nothing more. */
  #invalidate (): void {
    this.#generation++
    this.#inflight.clear()
  }
}
