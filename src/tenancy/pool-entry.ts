import type { Knex } from 'knex'
import { knexConfig } from '../db/knex-config.js'
import type { TenantRecord } from '../catalog/catalog-store.js'
import { tenantConnection } from '../catalog/tenant-connection.js'
import type { ElasticTarnPool, ReapablePool } from './elastic-pool.js'
import type { PoolSlots } from './pool-slots.js'
import type { Leased } from './pool-lease.js'

/** A tenant's pool in the cache, what holds it, and the few pool internals the cache reads. */

export interface PoolEntry extends Leased {
  readonly tenantId: string
  readonly serverId: string
  readonly slug: string
  readonly fingerprint: string
  readonly db: Knex
  /** Knex's tarn pool of `db`, read once: knex's `client` is an accessor, and scans under pressure read every entry's pool. */
  readonly pool: TenantTarnPool
  retired: boolean
  /** When a request last took it (PoolSlots' clock). */
  lastUsed: number
}

/** What the cache reads and drives of a tenant's tarn pool. */
export type TenantTarnPool = ElasticTarnPool & ReapablePool

/** Knex's tarn pool of a tenant instance; it exists once the instance is created. */
export function tarnPoolOf (db: Knex): TenantTarnPool {
  return (db.client as { pool: TenantTarnPool }).pool
}

/**
 * Where room can be made on a server, cheapest first: `unheld`, the least asked-for idle pool no
 * request holds (least recently used among equals), to retire; `held`, failing one, the least
 * asked-for pool in use with an idle connection its requests do not wait for, to close that
 * connection. One pass over the slots, no array made or sorted: under churn this runs for most requests.
 */
export function roomMakers (slots: PoolSlots<PoolEntry>, serverId: string): { unheld?: PoolEntry, held?: PoolEntry } {
  let unheld: PoolEntry | undefined
  let unheldAsked = Infinity
  let held: PoolEntry | undefined
  let heldAsked = Infinity
  slots.forEach((entry) => {
    const { pool } = entry
    if (entry.serverId !== serverId || pool.numFree() === 0) return
    if (entry.leases === 0) {
      const asked = slots.frequency(entry.tenantId)
      if (asked < unheldAsked || (asked === unheldAsked && entry.lastUsed < (unheld?.lastUsed ?? Infinity))) {
        unheld = entry
        unheldAsked = asked
      }
    } else if (unheld === undefined && pool.destroyed !== true && pool.numPendingAcquires() === 0) {
      const asked = slots.frequency(entry.tenantId)
      if (asked < heldAsked || (asked === heldAsked && entry.lastUsed < (held?.lastUsed ?? Infinity))) {
        held = entry
        heldAsked = asked
      }
    }
  })
  return unheld !== undefined ? { unheld } : held !== undefined ? { held } : {}
}

/** Computed once per record: cached records are the same objects request after request. */
const fingerprints = new WeakMap<TenantRecord, string>()

export function fingerprintOf (tenant: TenantRecord): string {
  let fingerprint = fingerprints.get(tenant)
  if (fingerprint === undefined) {
    // Where it connects (its server and endpoint included) and as whom: a change of any is a new pool.
    const { host, port, database, user, password } = tenantConnection(tenant, '')
    fingerprint = [tenant.server.id, host, port, database, user, password].join('\u0000')
    fingerprints.set(tenant, fingerprint)
  }
  return fingerprint
}

/** A tenant pool's knex settings: `client` the server's budgeted client class, the limits the cache's. */
export function tenantPoolConfig (
  tenant: TenantRecord,
  client: typeof Knex.Client,
  limits: { tenantPoolMax: number, tenantIdleTimeoutMs: number, tenantAcquireTimeoutMs: number }
): Knex.Config {
  return knexConfig({
    client,
    connection: tenantConnection(tenant, `silo:${tenant.slug}`),
    pool: {
      min: 0,
      max: limits.tenantPoolMax,
      idleTimeoutMillis: limits.tenantIdleTimeoutMs,
      // Tarn looks for idle connections once a second by default, so a shorter idle timeout
      // would hold connections (and budget slots) up to a second longer than configured.
      reapIntervalMillis: Math.min(1000, Math.max(10, Math.floor(limits.tenantIdleTimeoutMs / 2))),
      acquireTimeoutMillis: limits.tenantAcquireTimeoutMs
    },
    // PostgreSQL's version, so knex does not probe it on every new connection.
    ...(tenant.server.version === null ? {} : { serverVersion: tenant.server.version }),
    // Failures reach the request as errors and are logged there; knex's own console output is noise.
    quiet: true
  })
}
