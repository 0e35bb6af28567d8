import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { Silo } from '../../silo.js'
import { ErrorBody } from '../../schemas/error.js'
import { ServerAdd, ServerList, ServerParams, ServerView, serverView as view } from '../../schemas/servers.js'

/** What the server routes use of the core: the registry, as `tenants servers` does. */
export type AdminServerDeps = Pick<Silo, 'serverRegistry'>

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody }
const security = [{ bearer: [] }]

/**
 * The server registry over HTTP. A server's admin URL goes in once (POST /servers) and never
 * comes out: every answer is the Server view, which has no URL.
 */
export const adminServerRoutes: FastifyPluginAsyncTypebox<AdminServerDeps> = async (app, { serverRegistry: registry }) => {
  app.get('/servers', {
    schema: { tags: ['admin'], operationId: 'listServers', summary: 'List servers, each probed now (reachable, tenant sessions and bytes)', security, response: { 200: ServerList, ...errors } }
  }, async () => ({ items: (await registry.list()).map(view) }))

  app.post('/servers', {
    schema: {
      tags: ['admin'],
      operationId: 'addServer',
      summary: 'Register a server: its admin URL must answer, log in and may create databases and roles; stored encrypted, never shown',
      security,
      body: ServerAdd,
      response: { 201: ServerView, ...errors }
    }
  }, async (request, reply) => {
    const { name, url, tenantHost, tenantPort, maxTenants, weight, budget } = request.body
    await registry.add({ name, url, tenantHost, tenantPort, maxTenants, weight, connectionBudget: budget })
    return await reply.code(201).send(view(await registry.get(name)))
  })

  app.get('/servers/:name', {
    schema: { tags: ['admin'], operationId: 'getServer', summary: 'One server, probed now', security, params: ServerParams, response: { 200: ServerView, ...errors } }
  }, async (request) => view(await registry.get(request.params.name)))

  for (const [action, status] of [['drain', 'draining'], ['resume', 'active']] as const) {
    app.post(`/servers/:name/${action}`, {
      schema: {
        tags: ['admin'],
        operationId: `${action}Server`,
        summary: action === 'drain' ? 'Drain: it serves its tenants and takes no new ones' : 'Resume: it takes new tenants again',
        security,
        params: ServerParams,
        response: { 200: ServerView, ...errors }
      }
    }, async (request) => {
      await registry.setStatus(request.params.name, status)
      return view(await registry.get(request.params.name))
    })
  }

  app.delete('/servers/:name', {
    schema: {
      tags: ['admin'],
      operationId: 'removeServer',
      summary: 'Remove a server that holds no tenant (this catalog\'s template and spares there go with it); never `default`',
      security,
      params: ServerParams,
      response: { 204: Type.Null(), ...errors }
    }
  }, async (request, reply) => {
    await registry.remove(request.params.name)
    return await reply.code(204).send(null)
  })
}
