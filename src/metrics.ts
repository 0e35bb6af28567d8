import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Silo } from './silo.js'
import type { RequestOutcome, SiloEventMap } from './events.js'
import { newRequestOutcomes, type RequestOutcomes } from './tenancy/tenancy-plugin.js'

export interface SiloMetrics {
  registry: Registry
  /** Detaches from the core's events. */
  close: () => void
}

/**
 * Prometheus metrics of one Silo instance, in a registry of its own. Gauges are read from the
 * pool cache, budget and host cache at scrape time, and so are request outcomes (counted by the
 * tenancy plugin: no work per request here); the other counters and the cold-open histogram
 * follow the core's lifecycle events.
 */
/** What the metrics read of the core: pool and host-cache statistics, and its events. */
export type MetricsSources = Pick<Silo, 'pools' | 'resolver' | 'events'>

export function createMetrics (silo: MetricsSources, outcomes: RequestOutcomes): SiloMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'silo_' })
  const registers = [registry]

  registry.registerMetric(new Gauge({
    name: 'silo_tenant_pools',
    help: 'Tenant pools open, cached or retiring (waiting for their last request)',
    labelNames: ['state'],
    registers: [],
    collect () {
      const stats = silo.pools.stats()
      this.set({ state: 'cached' }, stats.pools)
      this.set({ state: 'retiring' }, stats.retiring)
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'silo_tenant_connections',
    help: 'Connections to tenant databases by state (used, free), and requests waiting for one (pending)',
    labelNames: ['state'],
    registers: [],
    collect () {
      const { connections } = silo.pools.stats()
      this.set({ state: 'used' }, connections.used)
      this.set({ state: 'free' }, connections.free)
      this.set({ state: 'pending' }, connections.pendingAcquires)
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'silo_tenant_requests_waiting',
    help: "Requests waiting their turn on their tenant's pool (past TENANT_REQUESTS_MAX), before their route runs",
    registers: [],
    collect () {
      this.set(silo.pools.stats().waiting)
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'silo_connection_budget',
    help: 'The connection budget: capacity, connections open against it, openers queued for a slot',
    labelNames: ['kind'],
    registers: [],
    collect () {
      const { budget } = silo.pools.stats()
      this.set({ kind: 'capacity' }, budget.capacity)
      this.set({ kind: 'open' }, budget.open)
      this.set({ kind: 'queued' }, budget.waiting)
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'silo_server_connection_budget',
    help: "Each server's connection budget: capacity, connections open against it (opening: being opened now), openers queued for a slot (servers this instance opened a pool for)",
    labelNames: ['server', 'kind'],
    registers: [],
    collect () {
      this.reset()
      for (const budget of silo.pools.stats().servers) {
        this.set({ server: budget.server, kind: 'capacity' }, budget.capacity)
        this.set({ server: budget.server, kind: 'open' }, budget.open)
        this.set({ server: budget.server, kind: 'queued' }, budget.waiting)
        this.set({ server: budget.server, kind: 'opening' }, budget.opening)
      }
    }
  }))

  const cumulative = (name: string, help: string, read: () => number): void => {
    let seen = 0
    registry.registerMetric(new Counter({
      name,
      help,
      registers: [],
      collect () {
        const now = read()
        if (now > seen) this.inc(now - seen)
        seen = now
      }
    }))
  }
  cumulative('silo_host_cache_hits_total', 'Host look-ups answered from the cache', () => silo.resolver.stats().hits)
  cumulative('silo_host_cache_misses_total', 'Host look-ups that asked the catalog', () => silo.resolver.stats().misses)
  cumulative('silo_host_cache_negative_hits_total', 'Unknown hosts answered from the negative cache', () => silo.resolver.stats().negativeHits)
  cumulative('silo_host_cache_stale_total', 'Stale answers served because the catalog failed', () => silo.resolver.stats().staleServed)
  cumulative('silo_connection_budget_rejections_total', 'Waits for a connection that ended in TENANT_BUSY', () => silo.pools.stats().budget.rejected)
  cumulative('silo_tenant_requests_left_waiting_total', "Requests whose client left while they waited their turn on their tenant's pool (TENANT_REQUESTS_MAX): their route never ran", () => silo.pools.stats().turns.left)
  cumulative('silo_tenant_requests_turn_timeouts_total', "Requests whose turn on their tenant's pool did not come within TENANT_ACQUIRE_TIMEOUT_MS (TENANT_BUSY)", () => silo.pools.stats().turns.timedOut)
  cumulative('silo_pool_growth_total', 'Times a tenant pool grew by a connection because a request waited longer than an open takes', () => silo.pools.stats().grown)
  registry.registerMetric(new Gauge({
    name: 'silo_host_cache_entries',
    help: 'Hosts cached (known, unknown) and hosts in the domain index (indexed)',
    labelNames: ['kind'],
    registers: [],
    collect () {
      const stats = silo.resolver.stats()
      this.set({ kind: 'known' }, stats.cached)
      this.set({ kind: 'unknown' }, stats.negativeCached)
      this.set({ kind: 'indexed' }, stats.indexed ?? 0)
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'silo_catalog_feed_connected',
    help: '1 while the catalog change feed (LISTEN) is connected and the domain index is in use',
    registers: [],
    collect () {
      this.set(silo.resolver.stats().indexed === null ? 0 : 1)
    }
  }))

  const seenOutcomes = newRequestOutcomes()
  registry.registerMetric(new Counter({
    name: 'silo_tenant_requests_total',
    help: 'Requests by how their tenant resolved (served, not_found, suspended, ...)',
    labelNames: ['outcome'],
    registers: [],
    collect () {
      for (const [outcome, now] of Object.entries(outcomes) as Array<[RequestOutcome, number]>) {
        if (now > seenOutcomes[outcome]) this.inc({ outcome }, now - seenOutcomes[outcome])
        seenOutcomes[outcome] = now
      }
    }
  }))
  const opened = new Counter({ name: 'silo_pool_opened_total', help: 'Tenant pools created', registers })
  const evicted = new Counter({ name: 'silo_pool_evictions_total', help: 'Tenant pools retired, by reason', labelNames: ['reason'], registers })
  const coldOpen = new Histogram({
    name: 'silo_connection_open_seconds',
    help: 'Time to open a new tenant connection (TCP, TLS, authentication), by server',
    labelNames: ['server'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers
  })
  const failures = new Counter({ name: 'silo_connection_failures_total', help: 'Tenant connections that could not be opened, by server', labelNames: ['server'], registers })

  const listeners: { [K in keyof SiloEventMap]?: (...args: SiloEventMap[K]) => void } = {
    'pool:opened': () => { opened.inc() },
    'pool:evicted': ({ reason }) => { evicted.inc({ reason }) },
    'connection:opened': ({ server, durationMs }) => { coldOpen.observe({ server }, durationMs / 1000) },
    'connection:failed': ({ server }) => { failures.inc({ server }) }
  }
  for (const [event, listener] of Object.entries(listeners)) silo.events.on(event as keyof SiloEventMap, listener as () => void)

  return {
    registry,
    close: () => {
      for (const [event, listener] of Object.entries(listeners)) silo.events.off(event as keyof SiloEventMap, listener as () => void)
    }
  }
}
