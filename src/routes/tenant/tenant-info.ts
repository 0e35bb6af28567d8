import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { CatalogStore } from '../../catalog/catalog-store.js'
import { TenantInfo } from '../../schemas/tenant.js'
import { ErrorBody } from '../../schemas/error.js'

export const tenantInfoRoutes: FastifyPluginAsyncTypebox<{ catalog: CatalogStore }> = async (app, { catalog }) => {
  app.get('/tenant', {
    schema: { tags: ['tenant'], summary: 'The tenant this host belongs to', response: { 200: TenantInfo, 404: ErrorBody, 403: ErrorBody, 503: ErrorBody } }
  }, async (request) => ({
    slug: request.tenant.slug,
    name: request.tenant.name,
    domains: await catalog.domainsOf(request.tenant.id)
  }))
}
