import type { FastifyInstance } from 'fastify'
import swaggerUi from '@fastify/swagger-ui'
import type { Registry } from 'prom-client'
import { ErrorBody } from '../../schemas/error.js'
import { assertAdminToken } from './admin-auth.js'
import { consoleRoutes } from './console.js'
import { adminMigrationRoutes, type AdminMigrationDeps } from './migrations.js'
import { adminMoveRoutes, type AdminMoveDeps } from './moves.js'
import { adminServerRoutes, type AdminServerDeps } from './servers.js'
import { adminStatsRoutes, type AdminStatsDeps } from './stats.js'
import { adminTenantRoutes, type AdminTenantDeps } from './tenants.js'

export interface AdminScopeOptions extends AdminTenantDeps, AdminServerDeps, AdminMoveDeps, AdminMigrationDeps, AdminStatsDeps {
  /** ADMIN_HOST: the only host these routes answer on. */
  adminHost: string
  /** ADMIN_TOKEN; unset refuses every call that needs it. */
  adminToken: string | undefined
  metrics: Registry
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Admin routes that need no token (the API docs, the console's files). */
    public?: boolean
  }
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * Everything served on ADMIN_HOST. Routes registered in this scope exist on that host only
 * (with or without a port, any case) and never resolve a tenant; all of them but the docs and
 * the console's files require the admin bearer token.
 */
export async function adminScope (app: FastifyInstance, options: AdminScopeOptions): Promise<void> {
  const { adminHost, adminToken, metrics, provisioner, attacher, catalog, serverRegistry, mover, migrator, events, fleetMigrations, migrateConcurrency, pools, resolver, outcomes } = options
  const host = new RegExp(`^${escapeRegExp(adminHost)}\\.?(:\\d{1,5})?$`, 'i')
  app.addHook('onRoute', (route) => {
    route.constraints = { ...route.constraints, host }
    route.config = { ...route.config, tenancy: false, ...(route.url.startsWith('/docs') ? { public: true } : {}) }
    route.bodyLimit ??= 64 * 1024
  })
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config?.public === true) return
    assertAdminToken(request.headers.authorization, adminToken)
  })

  await app.register(adminTenantRoutes, { provisioner, attacher, catalog })
  await app.register(adminServerRoutes, { serverRegistry })
  await app.register(adminMoveRoutes, { mover, catalog })
  await app.register(adminMigrationRoutes, { catalog, migrator, events, fleetMigrations, migrateConcurrency })
  await app.register(adminStatsRoutes, { pools, resolver, migrator, catalog, outcomes })
  app.get('/metrics', {
    schema: {
      tags: ['admin'],
      operationId: 'getMetrics',
      summary: 'Prometheus metrics',
      security: [{ bearer: [] }],
      response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } }, 401: ErrorBody }
    }
  }, async (_request, reply) => await reply.type(metrics.contentType).send(await metrics.metrics()))
  await app.register(swaggerUi, { routePrefix: '/docs' })
  await app.register(consoleRoutes)
}
