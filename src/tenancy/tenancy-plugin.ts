import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Knex } from 'knex'
import type { HostResolver } from '../catalog/host-resolver.js'
import type { TenantRecord } from '../catalog/catalog-store.js'
import type { PoolCache, PoolLease } from './pool-cache.js'
import { holdUntilClosed, letGo } from './response-leases.js'
import type { FreezeHolds } from './freeze-holds.js'
import { REQUEST_OUTCOMES, type RequestOutcome, type SiloEvents } from '../events.js'
import { hostFromHeader } from './host.js'
import { hostInvalid, isSiloError, notFound, tenantNotFound, tenantSuspended, tenantUnavailable } from '../errors.js'

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
   * Where requests for a tenant frozen by a move wait for its switch (MOVE_HOLD_MS). Without it,
   * such a request gets 503 TENANT_UNAVAILABLE at once.
   */
  holds?: FreezeHolds
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
  /** Counts of how requests' tenants resolved, kept here for metrics to read (no event per request). */
  outcomes?: RequestOutcomes
  /**
   * Answers a request the plugin refuses (malformed or unknown host, suspended tenant...). By
   * default the error goes through Fastify's error path to the application's error handler; an
   * application that can answer directly passes its handler here, which makes turning away a
   * flood of unknown hosts as cheap as serving a constant route.
   */
  refuse?: (error: Error, request: FastifyRequest, reply: FastifyReply) => unknown
  /**
   * The error for a request whose Host is missing or malformed (default: 400 HOST_INVALID with a
   * generic message). Called only for such requests, so an application can say more (where to go
   * instead) at no cost to the requests it serves.
   */
  hostInvalid?: (request: FastifyRequest) => Error
  /** The error for a well-formed host that is no tenant's (default: 404 TENANT_NOT_FOUND). Called only for such requests. */
  tenantNotFound?: (host: string, request: FastifyRequest) => Error
}

/** How many requests resolved to each outcome, since start. */
export type RequestOutcomes = Record<RequestOutcome, number>

export const newRequestOutcomes = (): RequestOutcomes =>
  Object.fromEntries(REQUEST_OUTCOMES.map((outcome) => [outcome, 0])) as RequestOutcomes

type HookDone = (error?: Error) => void

/** The tenant a request was admitted for, between its onRequest and its preHandler. */
const admittedKey = Symbol('silo.admittedTenant')
type AdmittedRequest = FastifyRequest & { [admittedKey]: TenantRecord | null }

/** Checks that a resolved tenant may be served now; throws the contract's error otherwise. */
export function assertServable (tenant: TenantRecord, requiredSchemaVersion?: string | null): void {
  switch (tenant.status) {
    case 'active': break
    case 'suspended': throw tenantSuspended()
    default: throw tenantUnavailable(`This tenant is ${tenant.status}`)
  }
  if (tenant.frozen) throw tenantUnavailable('This tenant is being moved to another server; retry shortly', undefined, 1)
  // Migration names start with a timestamp, so they order as text. A database attached with
  // --no-migrate has a schema of its own: the guard does not apply to it.
  if (requiredSchemaVersion != null && tenant.schemaManaged && (tenant.schemaVersion ?? '') < requiredSchemaVersion) {
    throw tenantUnavailable('This tenant is being upgraded')
  }
}

async function tenancy (app: FastifyInstance, options: TenancyPluginOptions): Promise<void> {
  const { resolver, pools, events, requiredSchemaVersion, outcomes, refuse, holds } = options
  const invalidHost = options.hostInvalid ?? (() => hostInvalid())
  const unknownHost = options.tenantNotFound ?? ((host: string) => tenantNotFound(host))
  const nonTenantHosts = new Set(options.nonTenantHosts ?? [])
  app.decorateRequest('tenant', null as unknown as TenantContext)
  app.decorateRequest('db', null as unknown as Knex)
  app.decorateRequest(admittedKey as unknown as string, null)

  const count = (kind: RequestOutcome): void => {
    if (outcomes !== undefined) outcomes[kind]++
    if (events !== undefined && events.listenerCount('request:tenant') > 0) events.emit('request:tenant', { outcome: kind })
  }
  /** Counts a refusal and returns its error (an unexpected error, from the catalog say, is passed through). */
  const refused = (kind: RequestOutcome, error: unknown): Error => {
    count(kind)
    return error as Error
  }
  /** Why `tenant` may not be served now, or undefined when it may. */
  const refusal = (request: FastifyRequest, tenant: TenantRecord | null, host: string): Error | undefined => {
    if (tenant === null) return refused('not_found', unknownHost(host, request))
    try {
      assertServable(tenant, requiredSchemaVersion)
    } catch (error) {
      return refused(tenant.status === 'suspended' ? 'suspended' : 'unavailable', error)
    }
    return undefined
  }
  const serve = (request: FastifyRequest, reply: FastifyReply, tenant: TenantRecord, host: string): void => {
    count('served')
    ;(request as AdmittedRequest)[admittedKey] = tenant
    request.tenant = { id: tenant.id, slug: tenant.slug, name: tenant.name, domains: tenant.domains, host }
    // Every later log line of this request, including Fastify's "request completed", names the
    // tenant. A muted logger skips the child: creating one is a measurable share of a request.
    if (request.log.level !== 'silent') {
      request.log = request.log.child({ tenant: tenant.slug })
      reply.log = request.log
    }
  }

  /** A refused request: answered by `refuse` when given (a hook that answers must not call done), else handed to Fastify. */
  const reject = (error: Error, request: FastifyRequest, reply: FastifyReply, done: HookDone): void => {
    if (refuse === undefined) done(error)
    else refuse(error, request, reply)
  }
  /** Serves the request for the host's tenant, or answers why not. */
  const admit = (request: FastifyRequest, reply: FastifyReply, done: HookDone, tenant: TenantRecord | null, host: string): void => {
    // Frozen by a move: held until the switch (the answer then is the tenant on its new server).
    if (tenant?.frozen === true && tenant.status === 'active' && holds !== undefined) {
      holds.wait(tenant, host).then(
        (fresh) => { admit(request, reply, done, fresh, host) },
        (error: unknown) => { reject(refused('unavailable', error), request, reply, done) }
      )
      return
    }
    const error = refusal(request, tenant, host)
    if (error !== undefined) {
      reject(error, request, reply, done)
      return
    }
    serve(request, reply, tenant as TenantRecord, host)
    done()
  }

  // Callback-style hooks: on the hot path (a cached host) nothing is awaited and no promise or
  // closure is made, and refusals are returned, not thrown: a throw per request cost a 404 flood
  // a sixth of its throughput.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.config?.tenancy === false) {
      done()
      return
    }
    const host = hostFromHeader(request.headers.host)
    if (host === null) {
      reject(refused('host_invalid', invalidHost(request)), request, reply, done)
      return
    }
    if (nonTenantHosts.has(host)) {
      reject(notFound(`Route ${request.method} ${request.url.split('?')[0] ?? ''} not found`), request, reply, done)
      return
    }
    const cached = resolver.cached(host)
    if (cached !== undefined) {
      admit(request, reply, done, cached, host)
      return
    }
    resolver.resolve(host).then(
      (tenant) => { admit(request, reply, done, tenant, host) },
      // A tenant the resolver refuses (its credential unreadable) is not a catalog outage.
      (error: unknown) => { reject(refused(isSiloError(error) && error.code === 'TENANT_UNAVAILABLE' ? 'unavailable' : 'catalog_unavailable', error), request, reply, done) }
    )
  })

  // The pool is leased once the body is in and valid, just before the handler, which then always
  // answers and so gives the lease back. Leased at onRequest, a request whose client left before
  // Fastify began to read its body would hold its lease forever: Node destroys a request stream
  // that nobody listens to without a word, and Fastify, attaching its body listeners later, then
  // waits for an end that never comes (the handler never runs, nothing answers).
  app.addHook('preHandler', (request, reply, done) => {
    const tenant = (request as AdmittedRequest)[admittedKey]
    if (tenant === null) {
      done()
      return
    }
    // A move froze the tenant (or its record changed) since the request was admitted: the
    // request waits for the switch here, before it takes a connection to the source.
    if (holds !== undefined) {
      const now = resolver.peek(request.tenant.host)
      if (now === undefined || now.frozen) {
        readmit(request, reply, done, request.tenant.host)
        return
      }
    }
    lease(request, reply, done, tenant, false)
  })

  /** Its tenant's record again (held while frozen), then its lease, or why not. */
  const readmit = (request: FastifyRequest, reply: FastifyReply, done: HookDone, host: string): void => {
    resolver.resolve(host).then(async (tenant) => tenant?.frozen === true ? await holds?.wait(tenant, host) ?? tenant : tenant).then(
      // Counted once already, when it was admitted.
      (tenant) => {
        if (tenant === null) {
          reject(unknownHost(host, request), request, reply, done)
          return
        }
        try {
          assertServable(tenant, requiredSchemaVersion)
        } catch (error) {
          reject(error as Error, request, reply, done)
          return
        }
        lease(request, reply, done, tenant, true)
      },
      (error: unknown) => { reject(error as Error, request, reply, done) }
    )
  }

  /** `fresh`: its tenant's record was just looked up again (readmit), so it is not looked up again when its turn comes. */
  const lease = (request: FastifyRequest, reply: FastifyReply, done: HookDone, tenant: TenantRecord, fresh: boolean): void => {
    let lease: PoolLease
    try {
      lease = pools.acquire(tenant)
    } catch (error) {
      reject(error as Error, request, reply, done)
      return
    }
    holdUntilClosed(request, reply, lease)
    request.db = lease.db
    if (lease.admitted) {
      done()
      return
    }
    // Its tenant's pool has as many requests as it may (see Lease): this one waits its turn.
    lease.whenAdmitted((outcome) => {
      // Its turn came, but a move may have frozen its tenant while it waited (the feed then
      // dropped its record from the cache): it gives the turn back, and its tenant is looked up
      // again and it is held for the switch like the requests that arrive now. Once only: the
      // second time it goes on, as a request admitted at once does.
      if (outcome === undefined && !fresh && holds !== undefined && resolver.peek(request.tenant.host)?.frozen !== false) {
        letGo(reply)
        readmit(request, reply, done, request.tenant.host)
      } else if (outcome === undefined) done()
      // Its client left while it waited: nothing was done, and there is no one to answer.
      else if (outcome === null) {
        void reply.hijack()
        done()
      } else reject(outcome, request, reply, done)
    })
  }
}

export const tenancyPlugin = fp(tenancy, { name: 'silo-tenancy', fastify: '5.x' })
