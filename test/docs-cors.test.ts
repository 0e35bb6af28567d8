import t from './helpers/tap.js'
import { createTenant, testApp } from './helpers/silo.js'

/*
 * Swagger UI on the admin host calling tenant routes ("Try it out"): the document sends tenant
 * operations to a tenant host, and tenant routes allow that cross-origin call from the admin
 * host's origins only.
 */

const token = 'admin-token-for-docs-cors-012345'
const { silo, app } = await testApp(t, { ADMIN_TOKEN: token, PORT: 4321 })
await createTenant(silo, 'acme', { domains: ['acme.test'], seed: true })
const admin = silo.config.adminHost

interface Operation { tags?: string[], servers?: unknown }
type Spec = { servers?: unknown, paths: Record<string, Record<string, Operation>> }

t.test('tenant operations carry a tenant-host server entry; admin and health operations do not', async (t) => {
  const spec = (await app.inject({ url: '/docs/json', headers: { host: admin } })).json() as Spec
  t.match(spec.servers, [{ url: 'http://{adminHost}', variables: { adminHost: { default: 'admin.localhost:4321' } } }], 'the rest is served on the admin host, the document-wide server')
  t.equal((spec.servers as unknown[]).length, 1)
  const tenantServer = [{
    url: 'http://{tenantHost}',
    description: String,
    variables: { tenantHost: { default: 'acme.localhost:4321', description: String } }
  }]
  const seen = { tenant: 0, other: 0 }
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (operation.tags?.includes('tenant') === true) {
        seen.tenant++
        t.match(operation.servers, tenantServer, `${method} ${path}`)
        t.equal((operation.servers as unknown[]).length, 1)
      } else {
        seen.other++
        t.equal(operation.servers, undefined, `${method} ${path} (${operation.tags?.join(',') ?? 'untagged'}) has no server entry`)
      }
    }
  }
  t.equal(seen.tenant, 6, 'GET /tenant and the five article operations')
  t.ok(seen.other >= 10, 'admin and health operations were checked')
  t.notOk(Object.keys(spec.paths).some((path) => path === '*' || path === '/*'), 'the CORS preflight route is not documented')
})

const preflight = async (origin: string, url = '/articles', host = 'acme.test') => await app.inject({
  method: 'OPTIONS',
  url,
  headers: { host, origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
})

t.test("a preflight from the admin host's origins succeeds on tenant routes", async (t) => {
  for (const origin of [`http://${admin}:4321`, `http://${admin}`, `https://${admin}`, `https://${admin}:8443`, 'http://Admin.Localhost:4321']) {
    for (const url of ['/articles', '/articles/1', '/tenant']) {
      const res = await preflight(origin, url)
      t.equal(res.statusCode, 204, `${origin} ${url}`)
      t.equal(res.headers['access-control-allow-origin'], origin, `${origin} ${url}: the origin is allowed`)
      t.match(res.headers['access-control-allow-methods'], /PATCH/)
      t.match(res.headers['access-control-allow-methods'], /DELETE/)
      t.equal(res.headers['access-control-allow-headers'], 'content-type')
      t.match(res.headers.vary, /Origin/)
    }
  }
  const real = await app.inject({ url: '/articles', headers: { host: 'acme.test', origin: `http://${admin}:4321` } })
  t.equal(real.statusCode, 200)
  t.equal(real.headers['access-control-allow-origin'], `http://${admin}:4321`, 'the request itself is allowed too')
})

t.test('from any other origin no access-control-allow-origin is sent', async (t) => {
  for (const origin of ['http://evil.example', 'http://acme.test', `http://${admin}.evil.example`, `http://x${admin}`, `http://${admin}:4321/`,
    `ftp://${admin}`, `http://${admin}:123456`, 'null', `http://evil.example/?${admin}`]) {
    const res = await preflight(origin)
    t.equal(res.headers['access-control-allow-origin'], undefined, `preflight from ${origin}`)
    const real = await app.inject({ url: '/articles', headers: { host: 'acme.test', origin } })
    t.equal(real.statusCode, 200)
    t.equal(real.headers['access-control-allow-origin'], undefined, `request from ${origin}`)
  }
  const noOrigin = await app.inject({ method: 'OPTIONS', url: '/articles', headers: { host: 'acme.test' } })
  t.equal(noOrigin.statusCode, 204, 'an OPTIONS without Origin is answered, not refused as text/plain')
  t.equal(noOrigin.headers['access-control-allow-origin'], undefined)
})

t.test('the admin API itself has no CORS, and unknown hosts are refused as before', async (t) => {
  const adminOrigin = `http://${admin}:4321`
  const options = await preflight(adminOrigin, '/tenants', admin)
  t.equal(options.statusCode, 404, 'no preflight route on the admin host')
  t.equal(options.headers['access-control-allow-origin'], undefined)
  const list = await app.inject({ url: '/tenants', headers: { host: admin, origin: adminOrigin, authorization: `Bearer ${token}` } })
  t.equal(list.statusCode, 200)
  t.equal(list.headers['access-control-allow-origin'], undefined, 'same-origin calls need no CORS header')
  const unknown = await preflight(adminOrigin, '/articles', 'nobody.test')
  t.match(unknown.json(), { statusCode: 404, code: 'TENANT_NOT_FOUND' }, 'a preflight to an unknown host is refused like any request there')
})
