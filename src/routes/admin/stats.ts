import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Silo } from '../../silo.js'
import { tenantNotFoundBySlug } from '../../lifecycle/provisioner.js'
import type { RequestOutcomes } from '../../tenancy/tenancy-plugin.js'
import { SlugParams } from '../../schemas/admin.js'
import { ErrorBody } from '../../schemas/error.js'
import { InstanceStats, TenantPoolView } from '../../schemas/stats.js'

/** What the stats routes read: the pool cache, the host resolver, the newest migration, and the request outcomes the tenancy plugin counts. */
export type AdminStatsDeps = Pick<Silo, 'pools' | 'resolver' | 'migrator' | 'catalog'> & { outcomes: RequestOutcomes }

const errors = { 401: ErrorBody, 404: ErrorBody }
const security = [{ bearer: [] }]

/** The instance's live figures as JSON: read at the call, nothing kept between calls. */
export const adminStatsRoutes: FastifyPluginAsyncTypebox<AdminStatsDeps> = async (app, { pools, resolver, migrator, catalog, outcomes }) => {
  // The code's newest migration does not change while the process runs: read once, on first use.
  let newest: string | null | undefined
  const newestVersion = async (): Promise<string | null> => (newest ??= await migrator.latestVersion())

  app.get('/stats', {
    schema: { tags: ['admin'], operationId: 'getStats', summary: 'This instance\'s live figures as JSON: catalog feed, pools, connections, budget, host cache, requests by outcome', security, response: { 200: InstanceStats, ...errors } }
  }, async (): Promise<InstanceStats> => {
    const { pools: cached, retiring, connections, budget, servers, waiting, turns } = pools.stats()
    const cache = resolver.stats()
    const lookups = cache.hits + cache.misses + cache.negativeHits
    return {
      at: new Date().toISOString(),
      catalogFeedConnected: cache.indexed !== null,
      newestSchemaVersion: await newestVersion(),
      pools: { cached, retiring },
      connections: { used: connections.used, free: connections.free, pending: connections.pendingAcquires },
      turns: { waiting, left: turns.left, timedOut: turns.timedOut },
      budget: { capacity: budget.capacity, open: budget.open, queued: budget.waiting, rejected: budget.rejected },
      servers: servers.map(({ server, capacity, open, waiting, opening }) => ({ server, capacity, open, queued: waiting, opening })),
      hostCache: { hits: cache.hits, misses: cache.misses, negativeHits: cache.negativeHits, staleServed: cache.staleServed, hitRatio: lookups === 0 ? null : (cache.hits + cache.negativeHits) / lookups },
      requests: { ...outcomes }
    }
  })

  app.get('/tenants/:slug/pool', {
    schema: { tags: ['admin'], operationId: 'getTenantPool', summary: 'The tenant\'s pool on this instance: cached or not, its leases and connections', security, params: SlugParams, response: { 200: TenantPoolView, ...errors } }
  }, async (request): Promise<TenantPoolView> => {
    const { slug } = request.params
    const tenant = await catalog.tenantBySlug(slug)
    if (tenant === null) throw tenantNotFoundBySlug(slug)
    const pool = pools.tenantStats(tenant.id)
    return { slug, cached: pool !== null, leases: pool?.leases ?? 0, connections: { used: pool?.used ?? 0, free: pool?.free ?? 0, pending: pool?.pending ?? 0 } }
  })
}
