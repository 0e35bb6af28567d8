import { connect } from 'node:net'
import t from './helpers/tap.js'
import { createTenant, testApp } from './helpers/silo.js'

const { silo, app } = await testApp(t)
await createTenant(silo, 'acme', { domains: ['acme.test', 'www.acme-corp.test'] })
await createTenant(silo, 'globex')

const tenantAt = async (host: string | undefined) => {
  const headers: Record<string, string> = {}
  if (host !== undefined) headers.host = host
  return await app.inject({ method: 'GET', url: '/tenant', headers })
}

t.test('case, port and trailing-dot variants and a second domain reach the same tenant', async (t) => {
  for (const host of ['acme.test', 'ACME.Test', 'acme.test:3000', 'acme.test.', 'Acme.Test.:8080', 'www.acme-corp.test']) {
    const res = await tenantAt(host)
    t.equal(res.statusCode, 200, host)
    t.equal(res.json().slug, 'acme', host)
  }
  const res = await tenantAt('acme.test')
  t.same(res.json(), { slug: 'acme', name: 'acme', domains: ['acme.test', 'www.acme-corp.test'] })
})

t.test('an unknown host is 404 TENANT_NOT_FOUND', async (t) => {
  for (const host of ['nobody.test', 'acme.test.evil', 'cme.test']) {
    const res = await tenantAt(host)
    t.equal(res.statusCode, 404, host)
    t.match(res.json(), { statusCode: 404, code: 'TENANT_NOT_FOUND', error: 'Not Found' }, host)
  }
  const admin = await tenantAt('Admin.Localhost:3000')
  t.match(admin.json(), { statusCode: 404, code: 'NOT_FOUND' }, 'the admin host is no tenant: tenant routes do not exist there')
})

t.test('a missing or malformed host is 400 HOST_INVALID', async (t) => {
  const malformed = ['bad_host', 'acme.test:', 'acme.test:99999', 'acme.test:12a', 'a..test', '-acme.test', 'acme-.test',
    '127.0.0.1', '[::1]:3000', 'acme.test/x', 'acme test', 'ac\u00e9me.test', 'x'.repeat(64) + '.test', `${'a.'.repeat(150)}test`]
  for (const host of malformed) {
    const res = await tenantAt(host)
    t.equal(res.statusCode, 400, JSON.stringify(host))
    t.match(res.json(), { statusCode: 400, code: 'HOST_INVALID' }, JSON.stringify(host))
  }
})

t.test('over a real connection, a request without a Host or with an empty one is 400 HOST_INVALID', async (t) => {
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = new URL(address)
  const raw = async (request: string): Promise<string> => await new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => { socket.end(request) })
    let text = ''
    socket.on('data', (chunk) => { text += chunk.toString() })
    socket.on('end', () => { resolve(text) })
    socket.on('error', reject)
  })
  for (const request of ['GET /tenant HTTP/1.1\r\nConnection: close\r\n\r\n', 'GET /tenant HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n', 'GET /tenant HTTP/1.0\r\n\r\n']) {
    const response = await raw(request)
    t.match(response, /^HTTP\/1\.[01] 400 /, JSON.stringify(request))
    t.match(response, /"code":"HOST_INVALID"/, JSON.stringify(request))
  }
})

t.test('the tenant API answers routes it does not have with 404 NOT_FOUND', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/nope', headers: { host: 'acme.test' } })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'NOT_FOUND')
})

t.test('a suspended tenant gets 403 TENANT_SUSPENDED, and is served again once resumed', async (t) => {
  await silo.provisioner.setStatus('globex', 'suspended')
  const suspended = await tenantAt('globex.test')
  t.equal(suspended.statusCode, 403)
  t.equal(suspended.json().code, 'TENANT_SUSPENDED')
  await silo.provisioner.setStatus('globex', 'active')
  t.equal((await tenantAt('globex.test')).statusCode, 200)
})

t.test('a tenant still provisioning gets 503 TENANT_UNAVAILABLE with Retry-After', async (t) => {
  await silo.catalog.setStatus('globex', 'provisioning')
  silo.resolver.clear()
  t.teardown(async () => {
    await silo.catalog.setStatus('globex', 'active')
    silo.resolver.clear()
  })
  const res = await tenantAt('globex.test')
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'TENANT_UNAVAILABLE')
  t.ok(Number(res.headers['retry-after']) > 0)
})

t.test('health answers on any host, even unknown or malformed ones', async (t) => {
  for (const host of ['acme.test', 'nobody.test', 'bad_host']) {
    t.equal((await app.inject({ url: '/healthz', headers: { host } })).statusCode, 200, host)
    const ready = await app.inject({ url: '/readyz', headers: { host } })
    t.equal(ready.statusCode, 200, host)
    t.same(ready.json(), { status: 'ready' })
  }
})

t.test('a tenant whose schema is behind the code gets 503 TENANT_UNAVAILABLE until migrated', async (t) => {
  const tenant = await silo.catalog.tenantBySlug('globex')
  if (tenant === null) throw new Error('no globex')
  await silo.migrator.rollback(tenant)
  await silo.catalog.setSchemaVersion('globex', null)
  silo.resolver.clear()
  const behind = await tenantAt('globex.test')
  t.equal(behind.statusCode, 503)
  t.equal(behind.json().code, 'TENANT_UNAVAILABLE')
  t.ok(Number(behind.headers['retry-after']) > 0)
  t.equal((await tenantAt('acme.test')).statusCode, 200, 'other tenants are unaffected')

  const outcome = await silo.migrator.migrate(tenant)
  await silo.catalog.setSchemaVersion('globex', outcome.after)
  silo.resolver.clear()
  t.equal((await tenantAt('globex.test')).statusCode, 200, 'served again once migrated')
})
