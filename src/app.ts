import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import swagger from '@fastify/swagger'
import { Ajv } from 'ajv'
import type { Silo } from './silo.js'
import { registerErrorHandling } from './error-handler.js'
import { shuttingDown } from './errors.js'
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

const incomingLogged = Symbol('silo.incomingLogged')
type LoggedRequest = FastifyRequest & { [incomingLogged]?: true }

/** Logs a request's "incoming request" line once, through its logger as it is at that point. */
function logIncoming (request: FastifyRequest): void {
  if ((request as LoggedRequest)[incomingLogged] === true) return
  ;(request as LoggedRequest)[incomingLogged] = true
  request.log.info({ req: request }, 'incoming request')
}

/**
 * Fastify logs "incoming request" as a request arrives, before any hook runs, so before the
 * tenant of its Host is known: that line could not name the tenant. Silo logs it from hooks
 * instead (see buildApp), once the tenancy hook has put the tenant's child logger in place or
 * refused the request, so every line of a tenant request carries `tenant`.
 */
class TenantAwareLogController extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    // A request answered without passing the hooks (none today) still gets its line.
    if (!this.isLogDisabled(request)) logIncoming(request)
    super.requestCompleted(error, request, reply, metadata)
  }
}

/** The HTTP application on top of an opened Silo core. It does not listen; server.ts does. */
export async function buildApp (silo: Silo, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger ?? createLogger(silo.config.logLevel),
    bodyLimit: 1024 * 1024,
    // A request without Host must reach Silo, to get its JSON 400 HOST_INVALID instead of Node's bare 400.
    http: { requireHostHeader: false },
    // Requests that arrive on a kept-alive connection while closing get Silo's own JSON 503
    // (SHUTTING_DOWN, below) instead of Fastify's body without a `code`.
    return503OnClosing: false,
    logController: new TenantAwareLogController(),
    forceCloseConnections: 'idle'
  }).withTypeProvider<TypeBoxTypeProvider>()

  const ajv = validatorCompilers()
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? ajv.body : ajv.other).compile(schema))
  registerErrorHandling(app)
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return
    void reply.header('connection', 'close')
    throw shuttingDown()
  })

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
  // Registered after the tenancy plugin, so they run once the tenant is resolved (onRequest) or
  // the request was refused before that (onError).
  app.addHook('onRequest', async (request) => { logIncoming(request) })
  app.addHook('onError', async (request) => { logIncoming(request) })
  await app.register(healthRoutes, { catalog: silo.catalog })
  await app.register(tenantInfoRoutes)
  await app.register(articleRoutes)
  await app.register(adminScope, { silo, metrics: metrics.registry })
  return app
}
