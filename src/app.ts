import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import swagger from '@fastify/swagger'
import { Ajv } from 'ajv'
import type { Silo } from './silo.js'
import { registerErrorHandling } from './error-handler.js'
import { createLogger } from './logger.js'
import { createMetrics } from './metrics.js'
import { adminScope } from './routes/admin/admin-scope.js'
import { tenancyPlugin } from './tenancy/tenancy-plugin.js'
import { healthRoutes } from './routes/health.js'
import { articleRoutes } from './routes/tenant/articles.js'
import { tenantInfoRoutes } from './routes/tenant/tenant-info.js'

export interface BuildAppOptions {
  /** Defaults to Silo's logger at the configured level. */
  logger?: FastifyBaseLogger
}

/**
 * Bodies are validated strictly (no type coercion, unknown keys rejected); query strings and
 * path parameters arrive as text, so they are coerced to the schema's types.
 */
function validatorCompilers (): { body: Ajv, other: Ajv } {
  const base = { allErrors: false, useDefaults: true, strict: false }
  return {
    body: new Ajv({ ...base, coerceTypes: false, removeAdditional: false }),
    other: new Ajv({ ...base, coerceTypes: 'array', removeAdditional: true })
  }
}

/** The HTTP application on top of an opened Silo core. It does not listen; server.ts does. */
export async function buildApp (silo: Silo, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger ?? createLogger(silo.config.logLevel),
    bodyLimit: 1024 * 1024,
    // A request without Host must reach Silo, to get its JSON 400 HOST_INVALID instead of Node's bare 400.
    http: { requireHostHeader: false },
    return503OnClosing: true,
    forceCloseConnections: 'idle'
  }).withTypeProvider<TypeBoxTypeProvider>()

  const ajv = validatorCompilers()
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? ajv.body : ajv.other).compile(schema))
  registerErrorHandling(app)

  await app.register(swagger, {
    openapi: {
      info: { title: 'Silo', version: '0.1.0', description: 'Tenant API (on every tenant host) and admin API (on ADMIN_HOST)' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }
    }
  })
  const metrics = createMetrics(silo)
  app.addHook('onClose', async () => { metrics.close() })

  await app.register(tenancyPlugin, {
    resolver: silo.resolver,
    pools: silo.pools,
    events: silo.events,
    ...(silo.config.schemaGuard ? { requiredSchemaVersion: await silo.migrator.latestVersion() } : {})
  })
  await app.register(healthRoutes, { catalog: silo.catalog })
  await app.register(tenantInfoRoutes, { catalog: silo.catalog })
  await app.register(articleRoutes)
  await app.register(adminScope, { silo, metrics: metrics.registry })
  return app
}
