import type { FastifyInstance } from 'fastify'
import cors from '@fastify/cors'
import type { OpenApiServer } from '../openapi.js'
import { articleRoutes } from './articles/routes.js'
import { tenantInfoRoutes } from './tenant-info/routes.js'

/**
 * Every resource of the tenant API, one folder each (routes.ts, store.ts, schemas.ts): adding a
 * resource is a migration, a folder and one line here (README, "Adding a tenant resource").
 */
const resources = [tenantInfoRoutes, articleRoutes]

declare module 'fastify' {
  interface FastifySchema {
    /** Where this operation is served (OpenAPI), when not on the document's own origin. */
    servers?: OpenApiServer[]
  }
}

export interface TenantApiOptions {
  /** The admin host: its pages (Swagger UI at /docs) may call tenant routes from the browser. */
  adminHost: string
  /** The tenant host the docs offer by default, with its port (`acme.localhost:3000`). */
  exampleHost: string
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * The tenant API, served on every tenant host: the one place its resources are registered. The docs live on the admin host, so each tenant
 * operation names its own server (a tenant host, as a variable): Swagger UI's "Try it out" then
 * calls a tenant host instead of the admin host, where tenant routes do not exist. That call is
 * cross-origin, so tenant routes allow CORS from the admin host's origins (http or https, any
 * port) and from no other. Refusals of the tenancy plugin (unknown host, suspended tenant) come
 * before this scope's hooks and carry no CORS headers: the 404 flood of unknown hosts stays as
 * cheap as it was.
 */
export async function tenantApi (app: FastifyInstance, { adminHost, exampleHost }: TenantApiOptions): Promise<void> {
  const servers: OpenApiServer[] = [{
    url: 'http://{tenantHost}',
    description: 'A tenant host: every tenant route answers for the tenant of its Host',
    variables: { tenantHost: { default: exampleHost, description: "One of a tenant's domains, with the port" } }
  }]
  app.addHook('onRoute', (route) => {
    if (route.schema?.hide === true) return
    // No token: a tenant route is public to its host (the tenant's own auth is the application's).
    route.schema = { ...route.schema, servers, security: [] }
  })
  await app.register(cors, {
    origin: new RegExp(`^https?://${escapeRegExp(adminHost)}(:\\d{1,5})?$`, 'i'),
    methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
    // An OPTIONS without Origin is answered like a preflight (204), not with the plugin's text/plain 400.
    strictPreflight: false
  })
  for (const resource of resources) await app.register(resource)
}
