import t from './helpers/tap.js'
import { createTenant, testApp } from './helpers/silo.js'

const token = 'admin-token-for-tests-0123456789'
const { silo, app } = await testApp(t, { ADMIN_TOKEN: token })
const admin = 'admin.localhost'
const auth = { authorization: `Bearer ${token}` }
const call = async (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object, headers: Record<string, string> = auth, host = admin) =>
  await app.inject({ method, url, headers: { host, ...headers }, ...(payload === undefined ? {} : { payload }) })

const adminRoutes: Array<['GET' | 'POST' | 'DELETE', string, object?]> = [
  ['GET', '/tenants'], ['POST', '/tenants', { slug: 'nope', domains: ['nope.test'] }], ['GET', '/tenants/acme'],
  ['POST', '/tenants/acme/domains', { domain: 'x.test' }], ['DELETE', '/tenants/acme/domains/acme.test'],
  ['POST', '/tenants/acme/suspend'], ['POST', '/tenants/acme/resume'], ['DELETE', '/tenants/acme'], ['GET', '/metrics']
]

t.test('every admin route refuses a missing, wrong or malformed token with 401 UNAUTHORIZED', async (t) => {
  await createTenant(silo, 'acme')
  const bad: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token' }, { authorization: token }, { authorization: `Basic ${token}` }, { authorization: `Bearer ${token}x` }, { authorization: 'Bearer ' }]
  for (const [method, url, payload] of adminRoutes) {
    for (const headers of bad) {
      const res = await call(method, url, payload, headers)
      t.equal(res.statusCode, 401, `${method} ${url} ${JSON.stringify(headers)}`)
      t.equal(res.json().code, 'UNAUTHORIZED')
      t.notOk(res.body.includes(token), 'the token is never echoed')
    }
  }
  t.equal((await silo.catalog.listTenants()).length, 1, 'nothing was created or dropped')
  t.equal((await silo.catalog.tenantBySlug('acme'))?.status, 'active')
})

t.test('without a configured ADMIN_TOKEN the admin API refuses everything', async (t) => {
  const { app: closed } = await testApp(t)
  for (const headers of [{}, { authorization: 'Bearer ' }, { authorization: 'Bearer undefined' }]) {
    const res = await closed.inject({ url: '/tenants', headers: { host: admin, ...headers } })
    t.equal(res.statusCode, 401)
  }
})

t.test('admin routes do not exist on tenant hosts, nor tenant routes on the admin host', async (t) => {
  for (const [method, url, payload] of adminRoutes) {
    const res = await call(method, url, payload, auth, 'acme.test')
    t.equal(res.statusCode, 404, `${method} ${url} on a tenant host`)
  }
  for (const url of ['/articles', '/tenant', '/articles/1']) {
    const res = await call('GET', url)
    t.equal(res.statusCode, 404, `${url} on the admin host`)
  }
  t.equal((await call('GET', '/tenants', undefined, auth, 'ADMIN.localhost:3000')).statusCode, 200, 'case and port do not matter')
})

t.test('a tenant goes through its whole life over the admin API, and routing follows at once', async (t) => {
  const created = await call('POST', '/tenants', { slug: 'initech', name: 'Initech', domains: ['initech.test', 'www.initech.test'], seed: true })
  t.equal(created.statusCode, 201, created.body)
  t.match(created.json(), { slug: 'initech', name: 'Initech', status: 'active', domains: ['initech.test', 'www.initech.test'], primaryDomain: 'initech.test' })
  t.equal((await app.inject({ url: '/articles', headers: { host: 'www.initech.test' } })).json().items.length, 5)

  t.match((await call('GET', '/tenants')).json().items.map((x: { slug: string }) => x.slug), ['acme', 'initech'])
  t.match((await call('GET', '/tenants/initech')).json(), { slug: 'initech', schemaVersion: await silo.migrator.latestVersion() })
  t.equal((await call('GET', '/tenants/nobody')).json().code, 'TENANT_NOT_FOUND')

  t.equal((await call('POST', '/tenants/initech/domains', { domain: 'Initech.Example' })).statusCode, 201)
  const viaNewDomain = await app.inject({ url: '/tenant', headers: { host: 'initech.example' } })
  t.equal(viaNewDomain.json().slug, 'initech', viaNewDomain.body)
  t.equal((await call('DELETE', '/tenants/initech/domains/www.initech.test')).statusCode, 204)
  t.equal((await app.inject({ url: '/tenant', headers: { host: 'www.initech.test' } })).statusCode, 404)
  t.equal((await call('DELETE', '/tenants/acme/domains/initech.test')).statusCode, 404, 'a domain of another tenant is not removed')

  t.match((await call('POST', '/tenants/initech/suspend')).json(), { status: 'suspended' })
  t.equal((await app.inject({ url: '/articles', headers: { host: 'initech.test' } })).json().code, 'TENANT_SUSPENDED', 'suspension takes effect at once')
  t.match((await call('POST', '/tenants/initech/resume')).json(), { status: 'active' })
  t.equal((await app.inject({ url: '/articles', headers: { host: 'initech.test' } })).statusCode, 200)

  t.equal((await call('DELETE', '/tenants/initech')).statusCode, 204)
  t.equal((await app.inject({ url: '/articles', headers: { host: 'initech.test' } })).statusCode, 404)
  t.notOk(await silo.admin.databaseExists(`${silo.config.tenantDbPrefix}initech`), 'its database is gone')
})

t.test('taken slugs and domains are 409, invalid input 400, and nothing is created', async (t) => {
  const before = (await silo.catalog.listTenants()).length
  t.match((await call('POST', '/tenants', { slug: 'acme', domains: ['other.test'] })).json(), { statusCode: 409, code: 'SLUG_TAKEN' })
  t.match((await call('POST', '/tenants', { slug: 'fresh', domains: ['acme.test'] })).json(), { statusCode: 409, code: 'DOMAIN_TAKEN' })
  const invalid = [{ slug: 'Bad', domains: ['a.test'] }, { slug: 'ok-slug', domains: [] }, { slug: 'ok-slug', domains: ['bad_host'] },
    { slug: 'ok-slug', domains: ['a.test'], extra: 1 }, { slug: 'ok-slug' }, { slug: "x'; drop table tenants; --", domains: ['a.test'] },
    { slug: 'ok-slug', domains: [admin] }, { slug: 'ok-slug', domains: ['a.test'], name: '' }]
  for (const body of invalid) {
    const res = await call('POST', '/tenants', body)
    t.equal(res.statusCode, 400, JSON.stringify(body))
    t.equal(res.json().code, 'VALIDATION_FAILED')
  }
  t.equal((await call('POST', '/tenants/acme/domains', { domain: 'x:80' })).json().code, 'VALIDATION_FAILED')
  t.equal((await call('GET', '/tenants/BAD')).statusCode, 400)
  const huge = await call('POST', '/tenants', { slug: 'huge', domains: ['a.test'], name: 'x'.repeat(100 * 1024) })
  t.equal(huge.statusCode, 413, 'admin bodies are limited')
  t.equal((await silo.catalog.listTenants()).length, before)
})

t.test('suspend and resume of a tenant that is provisioning, failed or dropping are 409 TENANT_STATE_CONFLICT, and change nothing', async (t) => {
  t.equal((await call('POST', '/tenants', { slug: 'midway', domains: ['midway.test'] })).statusCode, 201)
  for (const status of ['provisioning', 'failed', 'dropping'] as const) {
    await silo.catalog.setStatus('midway', status)
    for (const action of ['suspend', 'resume']) {
      const res = await call('POST', `/tenants/midway/${action}`)
      t.match(res.json(), { statusCode: 409, code: 'TENANT_STATE_CONFLICT', message: `Tenant midway is ${status}` }, `${action} of a ${status} tenant`)
      t.notOk(res.headers['retry-after'], 'a conflict is not an outage: no Retry-After')
    }
    t.equal((await silo.catalog.tenantBySlug('midway'))?.status, status, `still ${status}`)
  }
  await silo.catalog.setStatus('midway', 'active')
  t.match((await call('POST', '/tenants/midway/suspend')).json(), { status: 'suspended' })
  t.equal((await call('DELETE', '/tenants/midway')).statusCode, 204)
})

t.test('two concurrent creates of one slug give one 201 and one 409', async (t) => {
  const [a, b] = await Promise.all([
    call('POST', '/tenants', { slug: 'twice', domains: ['twice-a.test'] }),
    call('POST', '/tenants', { slug: 'twice', domains: ['twice-b.test'] })
  ])
  t.same([a?.statusCode, b?.statusCode].sort(), [201, 409])
  t.equal((await silo.catalog.listTenants(['twice'])).length, 1)
})

t.test('responses never carry a tenant password', async (t) => {
  const acme = await silo.catalog.tenantBySlug('acme')
  const bodies = [(await call('GET', '/tenants')).body, (await call('GET', '/tenants/acme')).body, (await call('GET', '/docs/json')).body]
  t.ok(bodies.every((body) => !body.includes(acme?.database.password ?? '<none>')))
})

t.test('metrics are Prometheus text with pool, budget, cache and request figures', async (t) => {
  await app.inject({ url: '/articles', headers: { host: 'acme.test' } })
  await app.inject({ url: '/articles', headers: { host: 'nobody.test' } })
  const res = await call('GET', '/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/plain/)
  for (const metric of ['silo_tenant_pools{state="cached"}', 'silo_connection_budget{kind="capacity"}', 'silo_tenant_connections{state="used"}',
    'silo_host_cache_misses_total', 'silo_tenant_requests_total{outcome="served"}', 'silo_tenant_requests_total{outcome="not_found"}',
    'silo_pool_opened_total', 'silo_connection_open_seconds_bucket']) {
    t.ok(res.body.includes(metric), metric)
  }
})

t.test('OpenAPI documents both APIs on the admin host, without a token', async (t) => {
  const json = await call('GET', '/docs/json', undefined, {})
  t.equal(json.statusCode, 200)
  const spec = json.json()
  t.match(spec.openapi, /^3\./)
  for (const path of ['/articles', '/articles/{id}', '/tenant', '/tenants', '/tenants/{slug}', '/healthz']) t.ok(spec.paths[path], path)
  t.equal((await call('GET', '/docs', undefined, {})).statusCode < 400, true, 'the docs UI answers')
  t.equal((await call('GET', '/docs/json', undefined, {}, 'acme.test')).statusCode, 404, 'not on tenant hosts')
})
