import knex, { type Knex } from 'knex'
import { LRUCache } from 'lru-cache'
import type { TenantRecord } from '../catalog/catalog-store.js'
import { knexConfig, type PgConnection } from '../db/knex-config.js'
import { tenantUnavailable } from '../errors.js'

export interface PoolCacheOptions {
  /** Host, port and TLS of the server holding tenant databases (a tenant row may override host/port). */
  server: PgConnection
  /** Connections per tenant pool. */
  poolMax: number
  /** Tenant pools kept open at once; the least recently used is evicted past this. */
  poolsMax: number
  idleTimeoutMs: number
  acquireTimeoutMs: number
  /** PostgreSQL version, so knex does not probe it on every new connection. */
  version?: string
}

export interface PoolLease {
  readonly db: Knex
  /** Idempotent. */
  release: () => void
}

export interface PoolCacheStats {
  pools: number
  retiring: number
  leases: number
  opened: number
  evicted: number
}

interface PoolEntry {
  readonly tenantId: string
  readonly fingerprint: string
  readonly db: Knex
  leases: number
  retired: boolean
}

/**
 * One Knex pool per tenant, in an LRU bounded in pools. Creating a Knex instance opens no
 * connection (pools have min 0), so `acquire` is synchronous and concurrent first requests for
 * a tenant necessarily share one pool. A pool pushed out of the LRU is retired, not killed: it
 * is destroyed once the last request holding a lease on it has released it.
 */
export class PoolCache {
  readonly #options: PoolCacheOptions
  readonly #pools: LRUCache<string, PoolEntry>
  readonly #destroying = new Set<Promise<void>>()
  #retiring = 0
  #leases = 0
  #opened = 0
  #evicted = 0
  #closed = false

  constructor (options: PoolCacheOptions) {
    this.#options = options
    this.#pools = new LRUCache<string, PoolEntry>({
      max: options.poolsMax,
      dispose: (entry) => { this.#retire(entry) }
    })
  }

  /** A lease on the tenant's pool; the caller must release it when its request is done. */
  acquire (tenant: TenantRecord): PoolLease {
    if (this.#closed) throw tenantUnavailable('The service is shutting down')
    const fingerprint = fingerprintOf(tenant)
    let entry = this.#pools.get(tenant.id)
    if (entry === undefined || entry.fingerprint !== fingerprint) {
      entry = this.#open(tenant, fingerprint)
      this.#pools.set(tenant.id, entry)
    }
    const leased = entry
    leased.leases++
    this.#leases++
    let released = false
    return {
      db: leased.db,
      release: () => {
        if (released) return
        released = true
        leased.leases--
        this.#leases--
        if (leased.retired && leased.leases === 0) this.#destroy(leased)
      }
    }
  }

  /** Retire a tenant's pool (dropped, suspended, credentials changed); in-flight work finishes. */
  evict (tenantId: string): void {
    this.#pools.delete(tenantId)
  }

  has (tenantId: string): boolean {
    return this.#pools.has(tenantId)
  }

  stats (): PoolCacheStats {
    return { pools: this.#pools.size, retiring: this.#retiring, leases: this.#leases, opened: this.#opened, evicted: this.#evicted }
  }

  /** Retires every pool and waits until all of them are destroyed. */
  async close (): Promise<void> {
    this.#closed = true
    this.#pools.clear()
    while (this.#destroying.size > 0 || this.#retiring > 0) {
      if (this.#destroying.size > 0) await Promise.allSettled([...this.#destroying])
      else await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  #open (tenant: TenantRecord, fingerprint: string): PoolEntry {
    const { server } = this.#options
    const config = knexConfig({
      connection: {
        ...server,
        host: tenant.database.host ?? server.host,
        port: tenant.database.port ?? server.port,
        database: tenant.database.name,
        user: tenant.database.user,
        password: tenant.database.password,
        application_name: `silo:${tenant.slug}`
      },
      pool: {
        min: 0,
        max: this.#options.poolMax,
        idleTimeoutMillis: this.#options.idleTimeoutMs,
        acquireTimeoutMillis: this.#options.acquireTimeoutMs
      },
      ...(this.#options.version === undefined ? {} : { version: this.#options.version })
    })
    this.#opened++
    return { tenantId: tenant.id, fingerprint, db: knex(config), leases: 0, retired: false }
  }

  #retire (entry: PoolEntry): void {
    if (entry.retired) return
    entry.retired = true
    this.#evicted++
    this.#retiring++
    if (entry.leases === 0) this.#destroy(entry)
  }

  #destroy (entry: PoolEntry): void {
    const done = entry.db.destroy()
      .catch(() => {})
      .finally(() => {
        this.#retiring--
        this.#destroying.delete(done)
      })
    this.#destroying.add(done)
  }
}

function fingerprintOf (tenant: TenantRecord): string {
  const { host, port, name, user, password } = tenant.database
  return [host, port, name, user, password].join('\u0000')
}
