import { LRUCache } from 'lru-cache'
import type { CatalogStore, TenantRecord } from './catalog-store.js'
import { catalogUnavailable } from '../errors.js'

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
}

/**
 * Host → tenant, through the catalog, with two bounded LRU caches: known hosts (TTL) and
 * unknown hosts (the same TTL), so a flood of random hosts can neither grow memory nor
 * reach the catalog more than once per host and TTL, and cannot push known tenants out.
 * Concurrent look-ups of one host share one catalog query. When the catalog fails, a host
 * seen before keeps its last answer (stale) and an unseen host gets CATALOG_UNAVAILABLE.
 */
export class HostResolver {
  readonly #known: LRUCache<string, TenantRecord>
  readonly #unknown: LRUCache<string, true>
  readonly #stats = { hits: 0, misses: 0, negativeHits: 0, staleServed: 0 }

  constructor (catalog: CatalogStore, options: HostResolverOptions) {
    const ttl = Math.max(1, options.ttlMs)
    this.#unknown = new LRUCache<string, true>({ max: options.max, ttl })
    this.#known = new LRUCache<string, TenantRecord>({
      max: options.max,
      ttl,
      allowStaleOnFetchRejection: true,
      noDeleteOnFetchRejection: true,
      fetchMethod: async (host) => {
        this.#stats.misses++
        const tenant = await catalog.tenantByHost(host)
        if (tenant === null) this.#unknown.set(host, true)
        return tenant ?? undefined
      }
    })
  }

  /** The tenant serving `host` (already normalized), or null when the catalog has none. */
  async resolve (host: string): Promise<TenantRecord | null> {
    if (this.#unknown.get(host) === true) {
      this.#stats.negativeHits++
      return null
    }
    if (this.#known.has(host)) {
      this.#stats.hits++
      return this.#known.get(host) ?? null
    }
    const status: LRUCache.Status<string, TenantRecord> = {}
    try {
      const tenant = await this.#known.fetch(host, { status })
      if (status.returnedStale === true) this.#stats.staleServed++
      return tenant ?? null
    } catch (error) {
      throw catalogUnavailable(error)
    }
  }

  /** Forget what is known of a host (after its domain was added or removed here). */
  invalidateHost (host: string): void {
    this.#known.delete(host)
    this.#unknown.delete(host)
  }

  /** Forget every host of a tenant (after its status or credentials changed here). */
  invalidateTenant (tenantId: string): void {
    for (const [host, tenant] of this.#known.entries()) {
      if (tenant.id === tenantId) this.#known.delete(host)
    }
  }

  clear (): void {
    this.#known.clear()
    this.#unknown.clear()
  }

  stats (): ResolverStats {
    return { ...this.#stats, cached: this.#known.size, negativeCached: this.#unknown.size }
  }
}
