import type { HttpConfig } from '../config.js'
import { DEMO_TENANTS } from '../demo-tenants.js'

/** An OpenAPI server object, as @fastify/swagger copies it into the document or onto an operation. */
export interface OpenApiServer {
  url: string
  description?: string
  variables?: Record<string, { default: string, description?: string }>
}

const withPort = (host: string, port: number): string => port === 80 || port === 0 ? host : `${host}:${port}`

/** The host the docs offer for tenant routes: the first demo tenant's, with the configured port. */
export function exampleTenantHost (port: number): string {
  return withPort(DEMO_TENANTS[0]?.domains[0] ?? 'tenant.localhost', port)
}

/**
 * Where the admin API (and health, which answers on every host) is served: ADMIN_HOST with the
 * port Silo listens on, a variable to change behind a proxy. Tenant operations name their own
 * server (routes/tenant/index.ts): a tenant host.
 */
export function adminServer (config: Pick<HttpConfig, 'adminHost' | 'port'>): OpenApiServer {
  return {
    url: 'http://{adminHost}',
    description: 'The admin host (ADMIN_HOST): the admin API, its docs and health',
    variables: { adminHost: { default: withPort(config.adminHost, config.port), description: 'ADMIN_HOST, with the port' } }
  }
}

/** The document's frame (@fastify/swagger's `openapi` option); the paths come from the routes' schemas. */
export function openApiFrame (config: Pick<HttpConfig, 'adminHost' | 'port'>): Record<string, unknown> {
  return {
    info: {
      title: 'Silo',
      version: '0.1.0',
      description: 'Tenant API (on every tenant host) and admin API (on ADMIN_HOST). Every error is `{ statusCode, code, error, message }` with a stable `code` (README, "Errors").',
      license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' }
    },
    servers: [adminServer(config)],
    tags: [
      { name: 'admin', description: 'The admin API: on ADMIN_HOST only, with `Authorization: Bearer <ADMIN_TOKEN>`' },
      { name: 'tenant', description: 'The tenant API: on every tenant host, for the tenant of its Host, against its database only' },
      { name: 'health', description: 'Liveness and readiness, on any host, without a token' }
    ],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' } } }
  }
}
