import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import swagger from '@fastify/swagger'
import type { HttpConfig } from './config.js'
import type { Silo } from './silo.js'
import { clientErrorHandler, expectationFailed, frameworkErrors, registerErrorHandling, replyWithError } from './error-handler.js'
import { hostInvalid, shuttingDown } from './errors.js'
import { firstContactErrors } from './first-contact.js'
import { createLogger } from './logger.js'
import { requestLogger } from './deferred-logger.js'
import { createMetrics } from './metrics.js'
import { buildRouteSerializer, routeValidatorCompiler } from './schema-compilers.js'
import { registerRequestLogging, TenantAwareLogController, writesInfo } from './request-logging.js'
import { adminScope } from './routes/admin/admin-scope.js'
import { absoluteTarget, hasDuplicateHost } from './tenancy/host.js'
import { newRequestOutcomes, tenancyPlugin } from './tenancy/tenancy-plugin.js'
import { healthRoutes } from './routes/health.js'
import { exampleTenantHost, openApiFrame } from './routes/openapi.js'
import { tenantApi } from './routes/tenant/index.js'

export interface BuildAppOptions {
  /** What the HTTP application reads of the configuration (the core reads its own part). */
  config: HttpConfig
  /** Defaults to Silo's logger at the configured level. */
  logger?: FastifyBaseLogger
}

/** The HTTP application on top of an opened Silo core. It does not listen; server.ts does. */
export async function buildApp (silo: Silo, options: BuildAppOptions): Promise<FastifyInstance> {
  const { config } = options
  const logger = options.logger ?? createLogger(config.logLevel)
  const infoLines = writesInfo(logger)
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: 1024 * 1024,
    // A request without Host must reach Silo, to get its JSON 400 HOST_INVALID instead of Node's bare 400.
    http: { requireHostHeader: false },
    // Requests that arrive on a kept-alive connection while closing get Silo's own JSON 503
    // (SHUTTING_DOWN, below) instead of Fastify's body without a `code`.
    return503OnClosing: false,
    logController: new TenantAwareLogController(infoLines),
    // Fastify makes a child logger (with the request id) for every request: a muted logger needs
    // none, and one that writes no line per request (above `info`) gets one made only if the
    // request writes a line (see deferred-logger.ts).
    childLoggerFactory: requestLogger,
    forceCloseConnections: 'idle',
    // Response serializers compiled once per schema in this process (schema-compilers.ts).
    schemaController: { compilersFactory: { buildSerializer: buildRouteSerializer } },
    // A domain may be 253 characters, and DELETE /tenants/:slug/domains/:domain must reach it.
    routerOptions: { maxParamLength: 512 },
    // Router and parser errors (bad percent-encoding, a parameter too long, a request Node cannot
    // parse) get Silo's JSON error with a code, like every other error.
    frameworkErrors,
    clientErrorHandler,
    // An absolute-form target (`GET http://globex.localhost/tenant`) names the host: RFC 9112
    // §3.2.2 has the server ignore Host and use the target's authority. It replaces Host before
    // routing, so the admin-host constraint, the tenancy plugin and the logs all see the same host,
    // and it is judged like any Host (malformed: 400 HOST_INVALID). Origin-form targets, every
    // ordinary request, cost one character test.
    rewriteUrl: (request) => {
      const url = request.url ?? '/'
      const target = absoluteTarget(url)
      if (target === null) return url
      request.headers.host = target.authority
      return target.path
    }
  }).withTypeProvider<TypeBoxTypeProvider>()
  // Node answers an `Expect` other than 100-continue with a bare 417 unless someone listens.
  app.server.on('checkExpectation', expectationFailed)
  // Only JSON bodies: anything else is 415 UNSUPPORTED_MEDIA_TYPE, not a string that fails validation.
  app.removeContentTypeParser('text/plain')

  app.setValidatorCompiler(routeValidatorCompiler())
  registerErrorHandling(app)
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  // First of every request's hooks, on every route (tenant, admin, health, not found).
  app.addHook('onRequest', (request, reply, done) => {
    if (closing) {
      void reply.header('connection', 'close')
      done(shuttingDown())
      return
    }
    // Two Host lines are refused (RFC 9112 §3.2) whichever host the first one names: Node keeps
    // only the first, and another server in front of Silo may have kept the second.
    if (hasDuplicateHost(request.raw.rawHeaders)) {
      done(hostInvalid('The request carries more than one Host header'))
      return
    }
    done()
  })

  await app.register(swagger, { openapi: openApiFrame(config) })
  const outcomes = newRequestOutcomes()
  const metrics = createMetrics(silo, outcomes)
  app.addHook('onClose', async () => { metrics.close() })

  await app.register(tenancyPlugin, {
    resolver: silo.resolver,
    pools: silo.pools,
    events: silo.events,
    holds: silo.holds,
    nonTenantHosts: [config.adminHost],
    outcomes,
    refuse: replyWithError,
    ...firstContactErrors(config.adminHost),
    ...(config.schemaGuard ? { requiredSchemaVersion: await silo.migrator.latestVersion() } : {})
  })
  registerRequestLogging(app, infoLines)
  await app.register(healthRoutes, { catalog: silo.catalog })
  await app.register(tenantApi, { adminHost: config.adminHost, exampleHost: exampleTenantHost(config.port) })
  await app.register(adminScope, { adminHost: config.adminHost, adminToken: config.adminToken, provisioner: silo.provisioner, attacher: silo.attacher, catalog: silo.catalog, serverRegistry: silo.serverRegistry, mover: silo.mover, migrator: silo.migrator, events: silo.events, fleetMigrations: silo.fleetMigrations, migrateConcurrency: config.migrateConcurrency, metrics: metrics.registry, pools: silo.pools, resolver: silo.resolver, outcomes })
  return app
}
