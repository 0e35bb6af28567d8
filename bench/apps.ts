import Fastify, { type FastifyInstance, type onRequestHookHandler } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import knex, { type Knex } from 'knex'
import { LRUCache } from 'lru-cache'
import { buildApp } from '../src/app.js'
import type { TenantRecord } from '../src/catalog/catalog-store.js'
import { tenantConnection } from '../src/catalog/tenant-connection.js'
import type { PgConnection } from '../src/db/knex-config.js'
import { registerErrorHandling } from '../src/error-handler.js'
import { articleRoutes } from '../src/routes/tenant/articles/routes.js'
import type { Silo } from '../src/silo.js'
import { benchHttpConfig } from './fixtures.js'

export interface Listening {
  app: FastifyInstance
  url: string
  close: () => Promise<void>
  /** Lets go of every connection it holds (between rounds, so the other side gets the server's slots). */
  reset?: () => Promise<void>
}

async function listen (app: FastifyInstance, close: () => Promise<void> = async () => {}): Promise<Listening> {
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, url, close: async () => { await app.close(); await close() } }
}

/** Knex's console output muted: a bench app's connection errors are counted as failed requests. */
const quiet = { warn () {}, error () {}, debug () {}, deprecate () {} }

/** A plain Fastify app serving Silo's article routes, `request.db` set by `onRequest`: the frame of every comparison app below. */
async function articlesApp (onRequest: onRequestHookHandler, close: () => Promise<void>): Promise<Listening> {
  const app = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>()
  registerErrorHandling(app)
  app.decorateRequest('db', null as unknown as Knex)
  app.addHook('onRequest', onRequest)
  await app.register(articleRoutes)
  return await listen(app, close)
}

/** Silo itself, plus a constant route (`/ping`, no tenancy): the HTTP ceiling of the same process. */
export async function siloApp (silo: Silo): Promise<Listening> {
  const app = await buildApp(silo, { config: benchHttpConfig })
  app.get('/ping', { config: { tenancy: false } }, async () => ({ ok: true }))
  const reset = async (): Promise<void> => {
    for (const tenantId of silo.pools.keys()) silo.pools.evict(tenantId)
    while (silo.pools.stats().budget.open > 0) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return { ...await listen(app), reset }
}

/**
 * A plain Fastify + Knex app serving the same article routes from one database: what a
 * single-tenant application gets, the baseline Silo's ratios are measured against.
 */
export async function singleDatabaseApp (connection: PgConnection, poolMax: number): Promise<Listening> {
  const db = knex({ client: 'pg', connection, pool: { min: 0, max: poolMax }, log: quiet })
  return await articlesApp(async (request) => { request.db = db }, async () => { await db.destroy() })
}

/**
 * The least a database per tenant costs on the hot path: a plain Fastify + Knex app with one
 * Knex pool of one connection per tenant database, picked by Host from a preloaded map (no
 * catalog, no budget, no leases), so as many backends as the single-database app's pool. What it
 * loses against that app is what ten databases' connections cost by themselves: they cannot
 * serve each other's queries.
 */
export async function poolPerTenantApp (tenantsByHost: Map<string, TenantRecord>): Promise<Listening> {
  const pools = new Map<string, Knex>([...tenantsByHost].map(([host, tenant]) => [host, knex({
    client: 'pg',
    connection: tenantConnection(tenant, 'silo-bench-pools'),
    pool: { min: 0, max: 1 },
    log: quiet
  })]))
  return await articlesApp((request, reply, done) => {
    const db = pools.get((request.headers.host ?? '').split(':')[0] ?? '')
    if (db === undefined) {
      void reply.code(404).send({ code: 'TENANT_NOT_FOUND' })
      return
    }
    request.db = db
    done()
  }, async () => { await Promise.all([...pools.values()].map(async (db) => { await db.destroy() })) })
}

/**
 * The naive recipe Silo competes with: an LRU of Knex instances keyed by host, with knex's
 * default pool, no connection budget, and eviction that destroys a pool at once. Host →
 * credentials come from a preloaded map, so only the pool policy differs from Silo.
 */
export async function naivePeerApp (tenantsByHost: Map<string, TenantRecord>, server: PgConnection, poolsMax: number): Promise<Listening> {
  const pools = new LRUCache<string, Knex>({ max: poolsMax, dispose: (db) => { void db.destroy() } })
  const dropAll = async (): Promise<void> => {
    const all = [...pools.values()]
    pools.clear()
    await Promise.allSettled(all.map(async (db) => { await db.destroy() }))
  }
  const app = await articlesApp(async (request, reply) => {
    const host = (request.headers.host ?? '').split(':')[0] ?? ''
    const tenant = tenantsByHost.get(host)
    if (tenant === undefined) return await reply.code(404).send({ code: 'TENANT_NOT_FOUND' })
    let db = pools.get(host)
    if (db === undefined) {
      db = knex({
        client: 'pg',
        connection: { ...server, database: tenant.database.name, user: tenant.database.user, password: tenant.database.password },
        log: quiet
      })
      pools.set(host, db)
    }
    request.db = db
  }, dropAll)
  return { ...app, reset: dropAll }
}
