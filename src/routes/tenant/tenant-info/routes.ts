import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { tenantErrorResponses as errors } from '../responses.js'
import { TenantInfo } from './schemas.js'

/** The tenant of this host, from the resolved (cached) record: it answers while the catalog is down. */
export const tenantInfoRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/tenant', {
    schema: { tags: ['tenant'], operationId: 'getTenantInfo', summary: 'The tenant this host belongs to', response: { 200: TenantInfo, ...errors } }
  }, async (request) => ({
    slug: request.tenant.slug,
    name: request.tenant.name,
    domains: request.tenant.domains
  }))
}
