import { Type, type Static } from '@sinclair/typebox'
import { REQUEST_OUTCOMES } from '../events.js'

const Count = Type.Integer({ minimum: 0 })

/**
 * One instance's live figures as JSON (the figures /metrics exposes as Prometheus text), for the
 * console's health page and anyone who would rather not parse the text format. Counters are
 * cumulative since the instance started: a reader takes differences between samples.
 */
export const InstanceStats = Type.Object({
  at: Type.String({ format: 'date-time', description: 'when these figures were read' }),
  catalogFeedConnected: Type.Boolean({ description: 'the catalog change feed (LISTEN) is connected and the domain index in use' }),
  newestSchemaVersion: Type.Union([Type.String(), Type.Null()], { description: 'the newest tenant migration this code has (a tenant\'s schemaVersion below it is behind)' }),
  pools: Type.Object({ cached: Count, retiring: Count }),
  connections: Type.Object({ used: Count, free: Count, pending: Count }, { description: 'connections to tenant databases, and requests waiting for one' }),
  turns: Type.Object({ waiting: Count, left: Count, timedOut: Count }, { description: 'requests past TENANT_REQUESTS_MAX on their tenant\'s pool: waiting their turn now; since start, those whose client left while they waited (their route never ran) and those whose turn did not come in time (TENANT_BUSY)' }),
  budget: Type.Object({ capacity: Count, open: Count, queued: Count, rejected: Count }, { description: 'the connection budget summed over servers: connections open against it, openers queued, waits that ended in TENANT_BUSY' }),
  servers: Type.Array(Type.Object({ server: Type.String(), capacity: Count, open: Count, queued: Count, opening: Count }), { description: 'each server\'s budget on this instance (servers it has opened a pool for): capacity, connections open, openers queued, connections being opened now' }),
  hostCache: Type.Object({
    hits: Count,
    misses: Count,
    negativeHits: Count,
    staleServed: Count,
    hitRatio: Type.Union([Type.Number(), Type.Null()], { description: '(hits + negativeHits) / all look-ups since start; null before the first' })
  }),
  requests: Type.Object(Object.fromEntries(REQUEST_OUTCOMES.map((outcome) => [outcome, Count])) as Record<typeof REQUEST_OUTCOMES[number], typeof Count>, { description: 'tenant requests by how their tenant resolved, since start' })
}, { title: 'InstanceStats' })
export type InstanceStats = Static<typeof InstanceStats>

/** One tenant's pool on this instance. */
export const TenantPoolView = Type.Object({
  slug: Type.String(),
  cached: Type.Boolean({ description: 'this instance holds a pool for it now' }),
  leases: Count,
  connections: Type.Object({ used: Count, free: Count, pending: Count }, { description: 'its pool\'s connections (all 0 without a pool)' })
}, { title: 'TenantPool' })
export type TenantPoolView = Static<typeof TenantPoolView>
