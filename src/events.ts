import { EventEmitter } from 'node:events'

/** Why a tenant's pool was retired (`pool:evicted`, the `reason` label of silo_pool_evictions_total). */
export const EVICTION_REASONS = ['lru', 'removed', 'idle', 'closing'] as const
export type EvictionReason = typeof EVICTION_REASONS[number]

/** Outcome of resolving a request's tenant, counted by metrics (the `outcome` label). */
export const REQUEST_OUTCOMES = ['served', 'host_invalid', 'not_found', 'suspended', 'unavailable', 'catalog_unavailable'] as const
export type RequestOutcome = typeof REQUEST_OUTCOMES[number]

/** Where a created tenant's database came from: a spare claimed, a clone of the template, or an empty database migrated. */
export type DatabaseSource = 'spare' | 'template' | 'migrations'

/**
 * Lifecycle events of the tenancy core, for an embedding application (audit, cache warm-up,
 * billing) and for Silo's own metrics. Listeners run synchronously: keep them cheap, and never
 * throw from one.
 */
export interface SiloEventMap {
  'tenant:created': [{ slug: string, durationMs: number, source: DatabaseSource }]
  'tenant:migrated': [{ slug: string, before: string | null, after: string | null, durationMs: number }]
  'tenant:suspended': [{ slug: string }]
  'tenant:resumed': [{ slug: string }]
  /** A database Silo did not create became a tenant (`tenants attach`). */
  'tenant:attached': [{ slug: string, durationMs: number }]
  /** The tenant is served from another server now (`tenants move`); `freezeMs`: how long its writes were held. */
  'tenant:moved': [{ slug: string, from: string, to: string, durationMs: number, freezeMs: number }]
  /** The tenant is gone from the catalog; `detached`: it was attached, and its database stays (unless dropped on request). */
  'tenant:dropped': [{ slug: string, detached?: boolean }]
  /** A create fell back from cloning the template to migrating an empty database. */
  'template:unavailable': [{ slug: string, error: Error }]
  /** Making, adopting, claiming or dropping a spare database failed (creates go the usual way meanwhile). */
  'spares:failed': [{ error: Error }]
  'pool:opened': [{ tenantId: string, slug: string }]
  'pool:evicted': [{ tenantId: string, slug: string, reason: EvictionReason }]
  /** A tenant connection opened, on the server of that name (an attached database on no registered server: its host:port). */
  'connection:opened': [{ slug: string, server: string, durationMs: number }]
  'connection:failed': [{ slug: string, server: string, error: Error }]
  'request:tenant': [{ outcome: RequestOutcome }]
  /**
   * The catalog change feed (LISTEN) was lost or regained. While it is lost, unknown hosts are
   * looked up in the catalog (negative cache) instead of the in-memory domain index.
   */
  'catalog:feed': [{ connected: boolean, error?: Error }]
  /**
   * The catalog's tenant credentials are now under another key (`tenants rekey`), by its id (a
   * fingerprint, not the key). `held: true`: this process holds it and seals with it from now
   * on. `held: false`: it cannot decrypt any credential it reads from now on and must be
   * restarted with the new SECRET_KEY; tenants it has cached keep being served meanwhile.
   */
  'catalog:key': [{ keyId: string, held: boolean }]
  /**
   * A heartbeat that renews this instance's shares of the budgeted servers failed (the catalog did
   * not answer). Past a lease without one, this instance opens nothing more on those servers.
   */
  'budget:heartbeat': [{ ok: false, error: Error }]
}

export class SiloEvents extends EventEmitter<SiloEventMap> {}
