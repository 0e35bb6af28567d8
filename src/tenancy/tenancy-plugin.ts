import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Knex } from 'knex'
import type { HostResolver } from '../catalog/host-resolver.js'
import type { TenantRecord } from '../catalog/catalog-store.js'
import type { PoolCache, PoolLease } from './pool-cache.js'
import type { RequestOutcome, SiloEvents } from './events.js'
import { hostFromHeader } from './host.js'
import { hostInvalid, notFound, tenantNotFound, tenantSuspended, tenantUnavailable } from '../errors.js'

/** What a route may know of the tenant it serves; credentials stay inside the core. */
export interface TenantContext {
  id: string
  slug: string
  name: string
  /** Every domain of the tenant, the primary first. */
  domains: string[]
  /** The host this request came in on (normalized). */
  host: string
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant of this request's Host. Null only on routes with `config: { tenancy: false }`. */
    tenant: TenantContext
    /** Knex bound to this tenant's database only. Null only on routes that opt out of tenancy. */
    db: Knex
  }
  interface FastifyContextConfig {
    /** `false` serves the route without resolving a tenant (health, admin). */
    tenancy?: boolean
  }
}

export interface TenancyPluginOptions {
  resolver: HostResolver
  pools: PoolCache
  /** Receives one `request:tenant` event per resolved (or refused) request. */
  events?: SiloEvents
  /**
   * The schema version the code needs (its newest tenant migration). A tenant whose recorded
   * version is older gets 503 TENANT_UNAVAILABLE, so new code never runs on an old schema.
   * Undefined turns the guard off.
   */
  requiredSchemaVersion?: string | null
  /**
   * Hosts that are never a tenant's (the admin host): a route there that did not opt out of
   * tenancy does not exist, so it is 404 NOT_FOUND rather than TENANT_NOT_FOUND.
   */
  nonTenantHosts?: string[]
}

const leaseKey = Symbol('silo.lease')
type LeasedRequest = FastifyRequest & { [leaseKey]?: PoolLease }

/** Checks that a resolved tenant may be served now; throws the contract's error otherwise. */
export function assertServable (tenant: TenantRecord, requiredSchemaVersion?: string | null): void {
  switch (tenant.status) {
    case 'active': break
    case 'suspended': throw tenantSuspended()
    default: throw tenantUnavailable(`This tenant is ${tenant.status}`)
  }
  // Migration names start with a timestamp, so they order as text.
  if (requiredSchemaVersion != null && (tenant.schemaVersion ?? '') < requiredSchemaVersion) {
    throw tenantUnavailable('This tenant is being upgraded')
  }
}

async function tenancy (app: FastifyInstance, options: TenancyPluginOptions): Promise<void> {
  const { resolver, pools, events, requiredSchemaVersion } = options
  const nonTenantHosts = new Set(options.nonTenantHosts ?? [])
  app.decorateRequest('tenant', null as unknown as TenantContext)
  app.decorateRequest('db', null as unknown as Knex)

  const resolve = async (request: FastifyRequest): Promise<{ tenant: TenantRecord, host: string }> => {
    const host = hostFromHeader(request.headers.host)
    if (host === null) throw outcome('host_invalid', hostInvalid())
    if (nonTenantHosts.has(host)) throw notFound(`Route ${request.method} ${request.url.split('?')[0] ?? ''} not found`)
    let tenant: TenantRecord | null
    try {
      tenant = await resolver.resolve(host)
    } catch (error) {
      throw outcome('catalog_unavailable', error)
    }
    if (tenant === null) throw outcome('not_found', tenantNotFound(host))
    try {
      assertServable(tenant, requiredSchemaVersion)
    } catch (error) {
      throw outcome(tenant.status === 'suspended' ? 'suspended' : 'unavailable', error)
    }
    return { tenant, host }
  }
  const outcome = (kind: RequestOutcome, error: unknown): unknown => {
    events?.emit('request:tenant', { outcome: kind })
    return error
  }

  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config?.tenancy === false) return
    const { tenant, host } = await resolve(request)
    const lease = pools.acquire(tenant)
    events?.emit('request:tenant', { outcome: 'served' })
    ;(request as LeasedRequest)[leaseKey] = lease
    request.db = lease.db
    request.tenant = { id: tenant.id, slug: tenant.slug, name: tenant.name, domains: tenant.domains, host }
    // Every later log line of this request, including Fastify's "request completed", names the
    // tenant. A muted logger skips the child: creating one is a measurable share of a request.
    if (request.log.level !== 'silent') {
      request.log = request.log.child({ tenant: tenant.slug })
      reply.log = request.log
    }
  })

  const release = async (request: FastifyRequest): Promise<void> => {
    (request as LeasedRequest)[leaseKey]?.release()
  }
  app.addHook('onResponse', release)
  app.addHook('onRequestAbort', release)
}

export const tenancyPlugin = fp(tenancy, { name: 'silo-tenancy', fastify: '5.x' })
