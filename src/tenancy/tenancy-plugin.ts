import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Knex } from 'knex'
import type { HostResolver } from '../catalog/host-resolver.js'
import type { TenantRecord } from '../catalog/catalog-store.js'
import type { PoolCache, PoolLease } from './pool-cache.js'
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

const leaseKey = Symbol('silo.lease')
type LeasedResponse = ServerResponse & { [leaseKey]?: PoolLease | undefined }
/** The tenant a request was admitted for, between its onRequest and its preHandler. */
const admittedKey = Symbol('silo.admittedTenant')
type AdmittedRequest = FastifyRequest & { [admittedKey]: TenantRecord | null }
const queuedKey = Symbol('silo.queuedResponses')
type WatchedSocket = Socket & { [queuedKey]?: Set<LeasedResponse> }

/**
 * Holds a request's pool lease until its response is closed, which Node signals in every case:
 * after the answer was written (kept-alive connections included), or when the connection closed
 * first. `finish` (Fastify's onResponse) never comes for an answer written to a closed
 * connection, and Fastify's onRequestAbort only runs while the body is unread, so a client that
 * leaves after sending its body would keep its lease, and a retired pool would never be destroyed.
 * One listener function for every response: no closure on the hot path.
 */
function holdUntilClosed (request: FastifyRequest, reply: FastifyReply, lease: PoolLease): void {
  const res = reply.raw as LeasedResponse
  res[leaseKey] = lease
  const socket = request.raw.socket as WatchedSocket | null
  // The client left while the host was being resolved: the close has been and gone.
  if (res.destroyed || socket?.destroyed === true) {
    responseClosed.call(res)
    return
  }
  res.on('close', responseClosed)
  // A pipelined request whose response waits behind an earlier one on the connection: Node
  // gives it the connection only when that one is done, and if the connection closes first,
  // this response is never told.
  if (res.socket === null && socket !== null) watchQueued(socket, res)
}

/** `close` listener of a leased response (`this`). */
function responseClosed (this: LeasedResponse): void {
  const lease = this[leaseKey]
  if (lease === undefined) return
  this[leaseKey] = undefined
  if (this.writableEnded) lease.release()
  else releaseWhenAnswered(this, lease)
}

/**
 * The client left before its answer while the route still runs: its queries may still need the
 * pool (a retired pool is destroyed when its last lease goes, and a later query would fail), so
 * the lease goes back when the route answers (the answer goes nowhere) or the response is
 * destroyed (an error past the error handler). A response whose connection is gone emits no
 * event for either, so this one response's two methods are wrapped; only early leavers pay for it.
 */
function releaseWhenAnswered (res: ServerResponse, lease: PoolLease): void {
  const { end, destroy } = res
  const done = (): void => {
    res.end = end
    res.destroy = destroy
    lease.release()
  }
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    done()
    return Reflect.apply(end, this, args) as ServerResponse
  } as ServerResponse['end']
  res.destroy = function (this: ServerResponse, ...args: unknown[]) {
    done()
    return Reflect.apply(destroy, this, args) as ServerResponse
  } as ServerResponse['destroy']
}

/** Tells the queued responses of `socket` when it closes; each leaves the set when it closes itself. */
function watchQueued (socket: WatchedSocket, res: LeasedResponse): void {
  let queued = socket[queuedKey]
  if (queued === undefined) {
    const responses = queued = socket[queuedKey] = new Set()
    socket.once('close', () => {
      for (const response of responses) responseClosed.call(response)
      responses.clear()
    })
  }
  const responses = queued
  responses.add(res)
  res.once('close', () => { responses.delete(res) })
}

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
    let lease: PoolLease
    try {
      lease = pools.acquire(tenant)
    } catch (error) {
      reject(error as Error, request, reply, done)
      return
    }
    holdUntilClosed(request, reply, lease)
    request.db = lease.db
    done()
  })
}

export const tenancyPlugin = fp(tenancy, { name: 'silo-tenancy', fastify: '5.x' })
