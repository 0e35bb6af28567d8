import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { Silo } from '../../silo.js'
import { tenantNotFoundBySlug } from '../../lifecycle/provisioner.js'
import { encodeTenantCursor, tenantPageStart } from '../../catalog/tenant-page.js'
import { DomainBody, DomainParams, SlugParams, TenantAttach, TenantCreate, TenantDropQuery, TenantReattach, TenantList, TenantListQuery, TenantView } from '../../schemas/admin.js'
import { ErrorBody } from '../../schemas/error.js'
import { tenantView as view } from '../../schemas/tenant-view.js'

/** What the tenant routes use of the core: every change goes through the provisioner. */
export type AdminTenantDeps = Pick<Silo, 'provisioner' | 'attacher' | 'catalog'>

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody }
const security = [{ bearer: [] }]

/** Tenant lifecycle over HTTP; every change goes through the provisioner, as the CLI's do. */
export const adminTenantRoutes: FastifyPluginAsyncTypebox<AdminTenantDeps> = async (app, { provisioner, attacher, catalog }) => {
  const one = async (slug: string): Promise<TenantView> => {
    const [tenant] = await catalog.listTenants([slug])
    if (tenant === undefined) throw tenantNotFoundBySlug(slug)
    return view(tenant)
  }

  app.post('/tenants', {
    schema: { tags: ['admin'], operationId: 'createTenant', summary: 'Create a tenant (database, role, schema, domains), on the server named or one placement picks', security, body: TenantCreate, response: { 201: TenantView, ...errors } }
  }, async (request, reply) => {
    const { slug, name, domains, seed, server } = request.body
    const tenant = await provisioner.create({ slug, domains, seed: seed === true, ...(name === undefined ? {} : { name }), ...(server === undefined ? {} : { server }) })
    return await reply.code(201).send(view(tenant))
  })

  app.post('/tenants/attach', {
    schema: { tags: ['admin'], operationId: 'attachTenant', summary: 'Serve an existing database as a tenant (its URL is checked, stored encrypted, never answered); migrated unless migrate is false', security, body: TenantAttach, response: { 201: TenantView, ...errors } }
  }, async (request, reply) => {
    const { slug, name, url, domains, migrate } = request.body
    return await reply.code(201).send(view(await attacher.attach({ slug, name, url, domains, migrate })))
  })

  app.post('/tenants/:slug/reattach', {
    schema: { tags: ['admin'], operationId: 'reattachTenant', summary: 'Point an attached tenant at a new URL (a rotated password, a moved database); its connections move over without a gap', security, params: SlugParams, body: TenantReattach, response: { 200: TenantView, ...errors } }
  }, async (request) => view(await attacher.reattach(request.params.slug, request.body.url)))

  app.get('/tenants', {
    schema: { tags: ['admin'], operationId: 'listTenants', summary: 'List tenants, a page at a time in slug order', security, querystring: TenantListQuery, response: { 200: TenantList, ...errors } }
  }, async (request) => {
    const { limit, cursor, status, server, search } = request.query
    const page = await catalog.tenantPage({ limit, after: tenantPageStart(cursor), status, server, search })
    return { items: page.items.map(view), nextCursor: page.next === null ? null : encodeTenantCursor(page.next) }
  })

  app.get('/tenants/:slug', {
    schema: { tags: ['admin'], operationId: 'getTenant', summary: 'One tenant', security, params: SlugParams, response: { 200: TenantView, ...errors } }
  }, async (request) => await one(request.params.slug))

  app.post('/tenants/:slug/domains', {
    schema: { tags: ['admin'], operationId: 'addTenantDomain', summary: 'Add a domain', security, params: SlugParams, body: DomainBody, response: { 201: TenantView, ...errors } }
  }, async (request, reply) => await reply.code(201).send(view(await provisioner.addDomain(request.params.slug, request.body.domain))))

  app.delete('/tenants/:slug/domains/:domain', {
    schema: { tags: ['admin'], operationId: 'removeTenantDomain', summary: 'Remove a domain', security, params: DomainParams, response: { 204: Type.Null(), ...errors } }
  }, async (request, reply) => {
    await provisioner.removeDomain(request.params.domain, request.params.slug)
    return await reply.code(204).send(null)
  })

  for (const [action, status] of [['suspend', 'suspended'], ['resume', 'active']] as const) {
    app.post(`/tenants/:slug/${action}`, {
      schema: { tags: ['admin'], operationId: `${action}Tenant`, summary: action === 'suspend' ? 'Suspend (403 on its hosts)' : 'Resume', security, params: SlugParams, response: { 200: TenantView, ...errors } }
    }, async (request) => view(await provisioner.setStatus(request.params.slug, status)))
  }

  app.delete('/tenants/:slug', {
    schema: { tags: ['admin'], operationId: 'dropTenant', summary: 'Drop the tenant: database, role and catalog entry (an attached tenant: only its entry, and its database with dropDatabase=true)', security, params: SlugParams, querystring: TenantDropQuery, response: { 204: Type.Null(), ...errors } }
  }, async (request, reply) => {
    await provisioner.drop(request.params.slug, { dropDatabase: request.query.dropDatabase === true })
    return await reply.code(204).send(null)
  })
}
