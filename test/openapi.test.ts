import t from './helpers/tap.js'
import { testApp } from './helpers/silo.js'

/*
 * The OpenAPI document is the admin API's contract for its clients (the console, generated
 * clients, scripts): every operation is named once, stably, and says what it does; each says
 * where it is served and what it needs. `npm run lint:openapi` lints the same document with
 * redocly's recommended rules.
 */

const { app } = await testApp(t, { ADMIN_TOKEN: 'admin-token-for-openapi-0123456', PORT: 4321 })

interface Operation { operationId?: string, summary?: string, tags?: string[], security?: unknown, servers?: unknown, responses?: Record<string, unknown> }
interface Spec {
  servers?: Array<{ url: string, variables?: Record<string, { default: string }> }>
  info: { license?: { name: string } }
  paths: Record<string, Record<string, Operation>>
}

const spec = (await app.inject({ url: '/docs/json', headers: { host: 'admin.localhost' } })).json() as Spec
const operations = Object.entries(spec.paths).flatMap(([path, item]) => Object.entries(item).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, operation })))

t.test('every operation has a camelCase operationId, unique in the document, and a summary', async (t) => {
  t.ok(operations.length >= 30, `the document lists the operations (${operations.length})`)
  const seen = new Map<string, string>()
  for (const { name, operation } of operations) {
    const id = operation.operationId
    t.match(id, /^[a-z][a-zA-Z0-9]+$/, `${name}: operationId ${String(id)}`)
    t.ok(typeof operation.summary === 'string' && operation.summary.length > 0, `${name}: summary`)
    if (id === undefined) continue
    t.notOk(seen.has(id), `${name}: ${id} is not also ${seen.get(id) ?? ''}`)
    seen.set(id, name)
  }
})

t.test('operationIds clients depend on keep their names', async (t) => {
  const ids = Object.fromEntries(operations.map(({ name, operation }) => [name, operation.operationId]))
  t.match(ids, {
    'GET /tenants': 'listTenants',
    'POST /tenants': 'createTenant',
    'GET /tenants/{slug}': 'getTenant',
    'DELETE /tenants/{slug}': 'dropTenant',
    'POST /tenants/{slug}/suspend': 'suspendTenant',
    'POST /tenants/{slug}/resume': 'resumeTenant',
    'POST /tenants/{slug}/migrate': 'migrateTenant',
    'POST /migrations': 'startFleetMigration',
    'GET /migrations/{id}': 'getFleetMigration',
    'POST /servers/{name}/drain': 'drainServer',
    'GET /articles': 'listArticles',
    'GET /healthz': 'getLiveness'
  })
})

t.test('the document is served from the admin host; tenant operations from a tenant host, without a token; admin ones with the bearer token', async (t) => {
  t.match(spec.servers, [{ url: 'http://{adminHost}', variables: { adminHost: { default: 'admin.localhost:4321' } } }], 'the admin host from ADMIN_HOST and PORT')
  t.equal(spec.info.license?.name, 'MIT')
  for (const { name, operation } of operations) {
    const tag = operation.tags?.[0]
    if (tag === 'admin') t.same(operation.security, [{ bearer: [] }], `${name}: bearer`)
    else t.same(operation.security, [], `${name} (${String(tag)}): no token`)
    t.ok(Object.keys(operation.responses ?? {}).some((status) => /^4\d\d$/.test(status)), `${name}: its 4xx answers are described`)
  }
})
