import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { CatalogStore } from '../catalog/catalog-store.js'
import { catalogUnavailable } from '../errors.js'
import { ErrorBody } from '../schemas/error.js'

const Status = Type.Object({ status: Type.String() })

/** Liveness and readiness, on any host, without resolving a tenant. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ catalog: CatalogStore }> = async (app, { catalog }) => {
  app.get('/healthz', {
    config: { tenancy: false },
    schema: { tags: ['health'], operationId: 'getLiveness', summary: 'Liveness: 200 while the process runs', security: [], response: { 200: Status, 400: ErrorBody, 503: ErrorBody } }
  }, async () => ({ status: 'ok' }))

  app.get('/readyz', {
    config: { tenancy: false },
    schema: { tags: ['health'], operationId: 'getReadiness', summary: 'Readiness: 200 when the catalog answers, else 503 CATALOG_UNAVAILABLE', security: [], response: { 200: Status, 400: ErrorBody, 503: ErrorBody } }
  }, async () => {
    try {
      await catalog.ping()
    } catch (error) {
      throw catalogUnavailable(error)
    }
    return { status: 'ready' }
  })
}
