import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import net from 'node:net'
import t from './helpers/tap.js'
import { root } from './helpers/paths.js'
import { rawRequest, type RawResponse } from './helpers/raw-http.js'
import { createTenant, testApp } from './helpers/silo.js'

/*
 * HTTP/1.1 edge cases that app.inject cannot send: two Host lines, absolute-form request
 * targets, dot segments that reach a static file handler unnormalized, and Expect headers. All
 * over raw sockets against a listening server.
 */

const token = 'admin-token-for-http-edges-0123'
const { silo, app } = await testApp(t, { ADMIN_TOKEN: token })
await createTenant(silo, 'acme', { domains: ['acme.localhost'] })
await createTenant(silo, 'globex', { domains: ['globex.localhost'], seed: true })
const port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port)
const admin = silo.config.adminHost

/** One request on its own connection: `head` is the request line and header lines, without the final blank line. */
const send = async (head: string, body = ''): Promise<RawResponse & { json: () => Record<string, unknown> }> => {
  const raw = await rawRequest(port, Buffer.from(`${head}\r\nConnection: close\r\n\r\n${body}`, 'latin1'))
  return { ...raw, json: () => JSON.parse(raw.body) as Record<string, unknown> }
}
const contractError = (res: RawResponse & { json: () => Record<string, unknown> }): Record<string, unknown> => {
  const json = res.json()
  return { status: res.status, keys: Object.keys(json).sort().join(','), statusCode: json.statusCode, code: json.code }
}
const error = (status: number, code: string): Record<string, unknown> => ({ status, keys: 'code,error,message,statusCode', statusCode: status, code })

t.test('two Host lines are 400 HOST_INVALID on every route, whichever hosts they name', async (t) => {
  const auth = `Authorization: Bearer ${token}`
  const cases: Array<[string, string[], string?]> = [
    ['GET /tenant', ['acme.localhost', 'globex.localhost']],
    ['GET /tenant', ['acme.localhost', 'acme.localhost']],
    ['GET /articles', ['globex.localhost', 'acme.localhost']],
    ['GET /tenants', [admin, 'acme.localhost'], auth],
    ['GET /tenants', ['acme.localhost', admin], auth],
    ['GET /docs/json', [admin, admin]],
    ['GET /healthz', ['acme.localhost', 'globex.localhost']],
    ['GET /readyz', [admin, 'acme.localhost']],
    ['GET /nope', ['acme.localhost', 'nobody.localhost']]
  ]
  for (const [line, hosts, extra] of cases) {
    for (const names of [['Host', 'Host'], ['host', 'HOST'], ['Host', 'hOsT']]) {
      const head = [`${line} HTTP/1.1`, ...hosts.map((host, i) => `${names[i] ?? 'Host'}: ${host}`), ...(extra === undefined ? [] : [extra])].join('\r\n')
      const res = await send(head)
      t.same(contractError(res), error(400, 'HOST_INVALID'), `${line} with ${names.join('/')} ${hosts.join(', ')}`)
    }
  }
  t.equal((await send('GET /tenants HTTP/1.1\r\nHost: admin.localhost\r\nX-Host: acme.localhost\r\nHosts: x\r\n' + auth)).status, 200,
    'headers whose names merely contain "host" are not Host lines')
  t.equal((await send('GET /tenant HTTP/1.1\r\nHost: globex.localhost')).json().slug, 'globex', 'one Host line is served')
  const noTenantTouched = await silo.catalog.listTenants()
  t.equal(noTenantTouched.length, 2)
})

t.test('an absolute-form target is served for the host it names, not for the Host header', async (t) => {
  const tenant = await send('GET http://globex.localhost/tenant HTTP/1.1\r\nHost: acme.localhost')
  t.equal(tenant.status, 200)
  t.equal(tenant.json().slug, 'globex', 'globex, the target authority; acme only sent the Host')
  const articles = await send('GET HTTP://GLOBEX.localhost:3000/articles?limit=2 HTTP/1.1\r\nHost: acme.localhost')
  t.equal(articles.status, 200, 'any case, with a port and a query')
  t.equal((articles.json().items as unknown[]).length, 2, "globex's seed articles, the query kept")
  t.equal((await send('GET http://globex.localhost HTTP/1.1\r\nHost: acme.localhost')).status, 404, 'an empty path is /')
  t.equal((await send('GET http://globex.localhost?x=1 HTTP/1.1\r\nHost: acme.localhost')).json().code, 'NOT_FOUND', 'a query right after the authority is on /')
  t.equal((await send('GET http://acme.localhost/tenant HTTP/1.0')).json().slug, 'acme', 'HTTP/1.0 without Host')
})

t.test('an absolute-form target picks admin or tenant routes by its authority: the Host header never reaches the other side', async (t) => {
  const auth = `\r\nAuthorization: Bearer ${token}`
  const toAdminFromTenantHost = await send(`GET http://${admin}/tenant HTTP/1.1\r\nHost: acme.localhost`)
  t.same(contractError(toAdminFromTenantHost), error(404, 'NOT_FOUND'), 'tenant routes do not exist on the admin host, whatever Host says')
  t.notOk(toAdminFromTenantHost.body.includes('acme'), "nothing of acme's")
  const adminList = await send(`GET http://${admin}:3000/tenants HTTP/1.1\r\nHost: acme.localhost${auth}`)
  t.equal(adminList.status, 200, 'the admin API answers the admin authority')
  t.same((adminList.json().items as Array<{ slug: string }>).map((x) => x.slug), ['acme', 'globex'])

  const toTenantFromAdminHost = await send(`GET http://acme.localhost/tenants HTTP/1.1\r\nHost: ${admin}${auth}`)
  t.same(contractError(toTenantFromAdminHost), error(404, 'NOT_FOUND'), 'admin routes do not exist on a tenant authority, whatever Host says')
  t.notOk(toTenantFromAdminHost.body.includes('globex'), 'no tenant list')
  t.same(contractError(await send(`GET http://acme.localhost/docs/json HTTP/1.1\r\nHost: ${admin}`)), error(404, 'NOT_FOUND'), 'nor the docs')
  const tenant = await send(`GET http://acme.localhost/tenant HTTP/1.1\r\nHost: ${admin}`)
  t.equal(tenant.json().slug, 'acme', 'the tenant of the authority is served though Host names the admin host')
})

t.test('an absolute-form target with a malformed authority is 400 HOST_INVALID', async (t) => {
  for (const target of ['http://user@acme.localhost/tenant', 'http://user:pw@acme.localhost/tenant', 'http:///tenant', 'http://acme.localhost:99999/tenant',
    'http://acme.localhost:/tenant', 'http://bad_host/tenant', 'http://127.0.0.1/tenant', 'https://[::1]:3000/tenant', `http://${admin}@acme.localhost/tenants`]) {
    const res = await send(`GET ${target} HTTP/1.1\r\nHost: acme.localhost`)
    t.same(contractError(res), error(400, 'HOST_INVALID'), target)
  }
})

t.test('a path that climbs out of the docs assets is 404 NOT_FOUND and reveals nothing', async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { description: string }
  for (const path of ['/docs/static/../../package.json', '/docs/static/../../../package.json', '/docs/static/%2e%2e/%2e%2e/package.json',
    '/docs/static/..%2f..%2fpackage.json', '/docs/static/../index.ts', '/docs/static/%2e%2e%2f%2e%2e%2f.env']) {
    const res = await send(`GET ${path} HTTP/1.1\r\nHost: ${admin}`)
    t.same(contractError(res), error(404, 'NOT_FOUND'), path)
    t.notOk(res.body.includes(pkg.description) || res.body.includes('dependencies') || res.body.includes('Forbidden'), `${path}: nothing of the file, nor that it exists`)
  }
  t.equal((await send(`GET /docs/static/swagger-ui.css HTTP/1.1\r\nHost: ${admin}`)).status, 200, 'the assets themselves are served')
})

t.test('an Expect other than 100-continue is 417 EXPECTATION_FAILED in the contract shape', async (t) => {
  for (const [line, host] of [['GET /tenant', 'acme.localhost'], ['POST /articles', 'acme.localhost'], ['GET /tenants', admin], ['GET /healthz', 'nobody.localhost']] as const) {
    for (const expect of ['200-ok', 'something', '100-continued']) {
      const res = await send(`${line} HTTP/1.1\r\nHost: ${host}\r\nExpect: ${expect}`)
      t.same(contractError(res), error(417, 'EXPECTATION_FAILED'), `${line} Expect: ${expect}`)
      t.match(res.json(), { error: 'Expectation Failed', message: /100-continue/ })
      t.match(res.headers, /content-type: application\/json/i)
    }
  }
})

t.test('Expect: 100-continue still gets 100 Continue, then the request is served', async (t) => {
  const body = JSON.stringify({ title: 'continued', body: 'sent after 100 Continue' })
  const socket = net.connect({ host: '127.0.0.1', port })
  t.teardown(() => { socket.destroy() })
  let received = ''
  const waitFor = async (pattern: RegExp): Promise<void> => await new Promise((resolve, reject) => {
    const check = (): void => {
      if (!pattern.test(received)) return
      socket.off('data', onData)
      resolve()
    }
    const onData = (chunk: Buffer): void => { received += chunk.toString(); check() }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.once('close', () => { reject(new Error(`closed before ${String(pattern)}; got ${received}`)) })
    check()
  })
  socket.write(`POST /articles HTTP/1.1\r\nHost: acme.localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`)
  await waitFor(/^HTTP\/1\.1 100 Continue\r\n\r\n/)
  t.pass('100 Continue arrived before the body was sent')
  socket.write(body)
  await waitFor(/\r\n\r\n\{.*\}$/s)
  t.match(received, /HTTP\/1\.1 201 Created/)
  t.match(received, /"title":"continued"/)
})
