import t from './helpers/tap.js'
import { createTenant, testApp } from './helpers/silo.js'

/*
 * What the console reads besides the tenant and server routes: the instance's live figures as
 * JSON (GET /stats), one tenant's pool (GET /tenants/:slug/pool), and the console's own files
 * on the admin host.
 */

const token = 'admin-token-for-stats-0123456789'
const { silo, app } = await testApp(t, { ADMIN_TOKEN: token })
const admin = { host: 'admin.localhost', authorization: `Bearer ${token}` }
await createTenant(silo, 'st-one')

interface Stats { catalogFeedConnected: boolean, newestSchemaVersion: string | null, requests: { served: number, not_found: number }, hostCache: { hits: number, misses: number, hitRatio: number | null }, budget: { capacity: number, open: number }, servers: Array<{ server: string, open: number }> }
const stats = async (): Promise<Stats> => (await app.inject({ url: '/stats', headers: admin })).json()

t.test('GET /stats answers the figures /metrics has, as JSON, with the admin token only', async (t) => {
  t.equal((await app.inject({ url: '/stats', headers: { host: 'admin.localhost' } })).statusCode, 401, 'no token: 401')
  t.equal((await app.inject({ url: '/stats', headers: { ...admin, host: 'st-one.test' } })).statusCode, 404, 'not on a tenant host')
  const before = await stats()
  t.equal(before.newestSchemaVersion, await silo.migrator.latestVersion(), 'the newest migration the code has')
  t.type(before.catalogFeedConnected, 'boolean')
  t.ok(before.budget.capacity > 0, 'the budget\'s capacity')

  t.equal((await app.inject({ url: '/articles', headers: { host: 'st-one.test' } })).statusCode, 200)
  t.equal((await app.inject({ url: '/articles', headers: { host: 'st-one.test' } })).statusCode, 200)
  t.equal((await app.inject({ url: '/articles', headers: { host: 'nobody.test' } })).statusCode, 404)
  const after = await stats()
  t.equal(after.requests.served - before.requests.served, 2, 'served requests counted')
  t.equal(after.requests.not_found - before.requests.not_found, 1, 'refusals counted by outcome')
  t.ok(after.hostCache.hits + after.hostCache.misses > before.hostCache.hits + before.hostCache.misses, 'host look-ups counted')
  t.ok(after.hostCache.hitRatio !== null && after.hostCache.hitRatio >= 0 && after.hostCache.hitRatio <= 1, 'a hit ratio between 0 and 1')
  t.ok(after.servers.some(({ server, open }) => server === 'default' && open >= 1), 'the default server\'s budget has the tenant\'s connection')
})

t.test('GET /tenants/:slug/pool says whether this instance holds the tenant\'s pool, and its connections', async (t) => {
  await createTenant(silo, 'st-two')
  const pool = async (slug: string) => await app.inject({ url: `/tenants/${slug}/pool`, headers: admin })
  t.same((await pool('st-two')).json(), { slug: 'st-two', cached: false, leases: 0, connections: { used: 0, free: 0, pending: 0 } }, 'no request yet: no pool')
  t.equal((await app.inject({ url: '/articles', headers: { host: 'st-two.test' } })).statusCode, 200)
  const held = (await pool('st-two')).json()
  t.equal(held.cached, true, 'a request opened its pool')
  t.equal(held.connections.used, 0, 'no connection in use once the request is done')
  t.ok(held.connections.free >= 1, 'its connection stays open, idle')
  const missing = await pool('st-none')
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'TENANT_NOT_FOUND')
  t.equal((await app.inject({ url: '/tenants/st-two/pool', headers: { host: 'admin.localhost' } })).statusCode, 401, 'no token: 401')
})

t.test('the console\'s files are served on the admin host without a token, with a strict CSP, and nowhere else', async (t) => {
  const page = await app.inject({ url: '/console', headers: { host: 'admin.localhost' } })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, /<script type="module" src="\/console\/console\.js"><\/script>/, 'the page loads its script from a file')
  t.notMatch(page.body.replace(/<script[^>]*src=[^>]*><\/script>/g, ''), /<script/, 'no inline script')
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /script-src 'self'/)
  t.match(csp, /default-src 'none'/)
  t.notMatch(csp, /unsafe-inline|unsafe-eval/, 'nothing inline, nothing evaluated')
  t.equal((await app.inject({ url: '/console/', headers: { host: 'admin.localhost' } })).statusCode, 200, 'with a trailing slash too')
  for (const [file, type] of [['console.js', /^text\/javascript/], ['console.css', /^text\/css/]] as const) {
    const res = await app.inject({ url: `/console/${file}`, headers: { host: 'admin.localhost' } })
    t.equal(res.statusCode, 200, file)
    t.match(res.headers['content-type'], type)
  }
  for (const path of ['/console/index.ts', '/console/../package.json', '/console/api-types.ts', '/console/console.js.map']) {
    t.equal((await app.inject({ url: path, headers: { host: 'admin.localhost' } })).statusCode, 404, `${path}: no such file served`)
  }
  for (const path of ['/console', '/console/console.js']) {
    const res = await app.inject({ url: path, headers: { host: 'st-one.test' } })
    t.equal(res.statusCode, 404, `${path} on a tenant host: 404`)
    t.notMatch(res.body, /<html/)
  }
  const document = (await app.inject({ url: '/docs/json', headers: { host: 'admin.localhost' } })).json() as { paths: Record<string, unknown> }
  t.notOk(Object.keys(document.paths).some((path) => path.startsWith('/console')), 'the console is not in the OpenAPI document')
  t.ok('/stats' in document.paths && '/tenants/{slug}/pool' in document.paths, 'its API calls are')
})
