// The server registry over the admin API: /servers (list, add, one, drain, resume, remove) and
// POST /tenants' `server`. Two real servers: DATABASE_URL's (registered as `default`) and an
// embedded one of this file's own. An admin URL (it holds a password) goes in once and never
// comes out: not in an answer, not in a log line.
import t from './helpers/tap.js'
import type { LightMyRequestResponse } from 'fastify'
import { buildApp } from '../src/app.js'
import { createLogger } from '../src/logger.js'
import { createTenant, testApp, testConfig } from './helpers/silo.js'
import { roleUrl, secondServer, SERVER_PORT_SQL } from './helpers/servers.js'

type Method = 'GET' | 'POST' | 'DELETE'

const token = 'admin-token-for-tests-0123456789'
const { silo, app } = await testApp(t, { ADMIN_TOKEN: token })
const second = await secondServer(t)
const secondPassword = new URL(second.url).password
const admin = 'admin.localhost'
const auth = { authorization: `Bearer ${token}` }

/** Every answer of the admin API in this file, checked at the end for URLs and passwords. */
const bodies: string[] = []
/** Every admin URL handed to POST /servers here, and the passwords in them. */
const secrets = new Set<string>([second.url, secondPassword])

const call = async (method: Method, url: string, payload?: object, headers: Record<string, string> = auth, host = admin): Promise<LightMyRequestResponse> => {
  const res = await app.inject({ method, url, headers: { host, ...headers }, ...(payload === undefined ? {} : { payload }) })
  bodies.push(res.body)
  return res
}
const serverNames = async (): Promise<string[]> => (await call('GET', '/servers')).json().items.map((server: { name: string }) => server.name)
const storedNames = async (): Promise<string[]> => (await silo.catalog.servers.list()).map((server) => server.name)
const portServing = async (slug: string): Promise<number> =>
  await silo.withTenant(slug, async (db) => Number((await db.raw<{ rows: Array<{ port: number }> }>(SERVER_PORT_SQL)).rows[0]?.port))

const serverRoutes: Array<[Method, string, object?]> = [
  ['GET', '/servers'], ['POST', '/servers', { name: 'second', url: second.url }], ['GET', '/servers/default'],
  ['POST', '/servers/default/drain'], ['POST', '/servers/default/resume'], ['DELETE', '/servers/second']
]

t.test('every /servers route refuses a missing or wrong token with 401, and does not exist on a tenant host', async (t) => {
  await createTenant(silo, 'acme')
  for (const [method, url, payload] of serverRoutes) {
    const bad: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token' }, { authorization: token }, { authorization: 'Bearer ' }]
    for (const headers of bad) {
      const res = await call(method, url, payload, headers)
      t.equal(res.statusCode, 401, `${method} ${url} ${JSON.stringify(headers)}`)
      t.equal(res.json().code, 'UNAUTHORIZED')
    }
    t.equal((await call(method, url, payload, auth, 'acme.test')).statusCode, 404, `${method} ${url} on a tenant host`)
  }
  t.same(await storedNames(), ['default'], 'nothing was recorded')
  t.equal((await silo.catalog.servers.byName('default'))?.status, 'active', 'nor drained')
})

t.test('refusals record nothing: unusable URLs 400, invalid input 400, a server or name taken 409', async (t) => {
  const before = await serverNames()
  t.same(before, ['default'])
  const noRights = await roleUrl(second.url, 'silo_no_rights', 'no-rights-password-123', 'NOCREATEDB NOCREATEROLE')
  const wrongPassword = new URL(second.url)
  wrongPassword.password = 'not-the-password-456'
  const defaultAgain = silo.config.databaseUrl ?? ''
  for (const url of [noRights, wrongPassword.toString(), 'no-rights-password-123', 'not-the-password-456']) secrets.add(url)

  const refusals: Array<[string, object, number, string, RegExp?]> = [
    ['unreachable', { name: 'refused', url: 'postgres://silo:unreachable-pw-789@127.0.0.1:1/postgres' }, 400, 'SERVER_UNUSABLE', /nothing answers/],
    ['wrong password', { name: 'refused', url: wrongPassword.toString() }, 400, 'SERVER_UNUSABLE', /was refused/],
    ['role without rights', { name: 'refused', url: noRights }, 400, 'SERVER_UNUSABLE', /may not create databases and roles/],
    ['not a URL', { name: 'refused', url: 'not a url with pw-111' }, 400, 'VALIDATION_FAILED'],
    ['not postgres://', { name: 'refused', url: 'http://user:some-pw-000@example.com/db' }, 400, 'VALIDATION_FAILED'],
    ['bad name', { name: 'Bad_Name', url: second.url }, 400, 'VALIDATION_FAILED'],
    ['name too short', { name: 'x', url: second.url }, 400, 'VALIDATION_FAILED'],
    ['no URL', { name: 'refused' }, 400, 'VALIDATION_FAILED'],
    ['unknown key', { name: 'refused', url: second.url, password: 'extra' }, 400, 'VALIDATION_FAILED'],
    ['the field is budget, not connectionBudget', { name: 'refused', url: second.url, connectionBudget: 5 }, 400, 'VALIDATION_FAILED'],
    ['weight 0', { name: 'refused', url: second.url, weight: 0 }, 400, 'VALIDATION_FAILED'],
    ['port out of range', { name: 'refused', url: second.url, tenantPort: 70000 }, 400, 'VALIDATION_FAILED'],
    ['bad tenant host', { name: 'refused', url: second.url, tenantHost: 'a b' }, 400, 'VALIDATION_FAILED'],
    ['the default server under another name', { name: 'default-again', url: defaultAgain }, 409, 'SERVER_TAKEN', /registered already, as default/],
    ['the name default', { name: 'default', url: second.url }, 409, 'SERVER_TAKEN']
  ]
  for (const [what, body, status, code, message] of refusals) {
    const res = await call('POST', '/servers', body)
    t.match(res.json(), { statusCode: status, code, ...(message === undefined ? {} : { message }) }, what)
  }
  const text = await app.inject({ method: 'POST', url: '/servers', headers: { host: admin, ...auth, 'content-type': 'text/plain' }, payload: JSON.stringify({ name: 'refused', url: second.url }) })
  t.equal(text.statusCode, 415, 'JSON bodies only')
  bodies.push(text.body)
  t.same(await serverNames(), before, 'GET /servers unchanged')
  t.same(await storedNames(), ['default'], 'and nothing in the catalog')
})

t.test('five concurrent registrations of one name: one 201, four 409 SERVER_TAKEN, one row', async (t) => {
  const answers = await Promise.all(Array.from({ length: 5 }, async () => await call('POST', '/servers', { name: 'second', url: second.url, weight: 2, maxTenants: 50, budget: 20 })))
  t.same(answers.map((res) => res.statusCode).sort(), [201, 409, 409, 409, 409], answers.map((res) => res.body).join('\n'))
  for (const res of answers.filter((res) => res.statusCode === 409)) t.equal(res.json().code, 'SERVER_TAKEN')
  const created = answers.find((res) => res.statusCode === 201)?.json()
  const expected = { name: 'second', status: 'active', tenants: 0, maxTenants: 50, weight: 2, connectionBudget: 20, tenantHost: null, tenantPort: null }
  t.match(created, { ...expected, serverVersion: /^\d+/, reachable: true, tenantBackends: 0, tenantBytes: 0, createdAt: String, updatedAt: String })
  t.same(await storedNames(), ['default', 'second'], 'one row')

  const list = await call('GET', '/servers')
  t.equal(list.statusCode, 200)
  t.match(list.json().items, [{ name: 'default', status: 'active', reachable: true }, { name: 'second', status: 'active', reachable: true, weight: 2 }])
  t.match((await call('GET', '/servers/second')).json(), { name: 'second', reachable: true, tenants: 0 })
  t.match((await call('GET', '/servers/nowhere')).json(), { statusCode: 404, code: 'SERVER_NOT_FOUND' })
  t.equal((await call('GET', '/servers/NOT_A_NAME')).json().code, 'VALIDATION_FAILED')

  t.match((await call('POST', '/servers', { name: 'second', url: second.url })).json(), { statusCode: 409, code: 'SERVER_TAKEN' }, 'a name is taken once')
  t.match((await call('POST', '/servers', { name: 'second-again', url: second.url })).json(), { statusCode: 409, code: 'SERVER_TAKEN', message: /as second/ }, 'and a server once')
  t.same(await storedNames(), ['default', 'second'])
})

t.test('POST /tenants with `server` puts the tenant there, and it is served from there', async (t) => {
  const created = await call('POST', '/tenants', { slug: 'faraway', domains: ['faraway.test'], seed: true, server: 'second' })
  t.equal(created.statusCode, 201, created.body)
  t.match(created.json(), { slug: 'faraway', status: 'active', server: 'second' })
  t.equal((await silo.catalog.tenantBySlug('faraway'))?.server.name, 'second', 'the catalog places it on second')
  t.match((await call('GET', '/tenants/faraway')).json(), { slug: 'faraway', server: 'second' })
  t.match((await call('GET', '/tenants')).json().items, [{ slug: 'acme', server: 'default' }, { slug: 'faraway', server: 'second' }])

  const articles = await app.inject({ url: '/articles', headers: { host: 'faraway.test' } })
  t.equal(articles.statusCode, 200, articles.body)
  t.equal(articles.json().items.length, 5, 'its seeded articles')
  t.equal(await portServing('faraway'), second.port, 'its own connection reaches the second server')
  t.not(await portServing('acme'), second.port, 'and an unpinned tenant of before stays on default')

  t.match((await call('GET', '/servers/second')).json(), { tenants: 1, reachable: true })
  t.ok((await call('GET', '/servers/second')).json().tenantBytes > 0, 'its database counts in the bytes')

  t.match((await call('POST', '/tenants', { slug: 'lost', domains: ['lost.test'], server: 'nowhere' })).json(), { statusCode: 404, code: 'SERVER_NOT_FOUND' })
  t.match((await call('POST', '/tenants', { slug: 'lost', domains: ['lost.test'], server: 'Not A Name' })).json(), { statusCode: 400, code: 'VALIDATION_FAILED' })
  t.equal(await silo.catalog.tenantBySlug('lost'), null, 'nothing created')
})

t.test('drain, resume and removal', async (t) => {
  const drained = await call('POST', '/servers/second/drain')
  t.equal(drained.statusCode, 200)
  t.match(drained.json(), { name: 'second', status: 'draining', tenants: 1, reachable: true })
  t.match((await call('GET', '/servers/second')).json(), { status: 'draining' })
  t.match((await call('POST', '/tenants', { slug: 'refused', domains: ['refused.test'], server: 'second' })).json(), { statusCode: 409, code: 'SERVER_NOT_ACCEPTING' })
  t.equal(await silo.catalog.tenantBySlug('refused'), null, 'a refused pin leaves nothing')
  t.match((await call('POST', '/tenants', { slug: 'elsewhere', domains: ['elsewhere.test'] })).json(), { slug: 'elsewhere', server: 'default' }, 'unpinned goes elsewhere')
  t.equal(await portServing('faraway'), second.port, 'a draining server still serves its tenants')
  t.equal((await app.inject({ url: '/articles', headers: { host: 'faraway.test' } })).statusCode, 200)

  const resumed = await call('POST', '/servers/second/resume')
  t.equal(resumed.statusCode, 200)
  t.match(resumed.json(), { name: 'second', status: 'active' })
  const again = await call('POST', '/tenants', { slug: 'returning', domains: ['returning.test'], server: 'second' })
  t.match(again.json(), { slug: 'returning', server: 'second' }, 'accepted again')
  t.equal(await portServing('returning'), second.port)

  for (const action of ['drain', 'resume']) t.match((await call('POST', `/servers/nowhere/${action}`)).json(), { statusCode: 404, code: 'SERVER_NOT_FOUND' }, action)
  const inUse = await call('DELETE', '/servers/second')
  t.match(inUse.json(), { statusCode: 409, code: 'SERVER_IN_USE', message: /holds 2 tenants/ })
  t.match((await call('DELETE', '/servers/default')).json(), { statusCode: 409, code: 'SERVER_IN_USE' })
  t.match((await call('DELETE', '/servers/nowhere')).json(), { statusCode: 404, code: 'SERVER_NOT_FOUND' })
  t.same(await storedNames(), ['default', 'second'], 'nothing removed')

  for (const slug of ['faraway', 'returning', 'elsewhere']) t.equal((await call('DELETE', `/tenants/${slug}`)).statusCode, 204, `drop ${slug}`)
  const removed = await call('DELETE', '/servers/second')
  t.equal(removed.statusCode, 204, removed.body)
  t.equal(removed.body, '')
  t.match((await call('GET', '/servers/second')).json(), { statusCode: 404, code: 'SERVER_NOT_FOUND' })
  t.same(await serverNames(), ['default'])
  t.match((await call('POST', '/tenants', { slug: 'orphan', domains: ['orphan.test'], server: 'second' })).json(), { statusCode: 404, code: 'SERVER_NOT_FOUND' })
})

t.test('no log line at any level carries an admin URL or its password', async (t) => {
  const lines: string[] = []
  const logged = await buildApp(silo, { config: testConfig({ ADMIN_TOKEN: token }), logger: createLogger('trace', { write: (line: string) => { lines.push(line) } }) })
  t.teardown(async () => { await logged.close() })
  const send = async (method: Method, url: string, payload?: object | string): Promise<LightMyRequestResponse> => {
    const body = payload === undefined ? {} : { payload, headers: { host: admin, ...auth, 'content-type': 'application/json' } }
    const res = await logged.inject({ method, url, headers: { host: admin, ...auth }, ...body })
    bodies.push(res.body)
    return res
  }
  const wrongPassword = new URL(second.url)
  wrongPassword.password = 'logged-wrong-password-789'
  secrets.add(wrongPassword.toString()).add('logged-wrong-password-789')

  t.equal((await send('POST', '/servers', { name: 'logged', url: wrongPassword.toString() })).json().code, 'SERVER_UNUSABLE')
  t.equal((await send('POST', '/servers', { name: 'Bad Name', url: second.url })).json().code, 'VALIDATION_FAILED')
  t.equal((await send('POST', '/servers', { name: 'logged', url: second.url, extra: second.url })).json().code, 'VALIDATION_FAILED')
  t.equal((await send('POST', '/servers', { name: 'logged', url: second.url, weight: 'heavy' })).json().code, 'VALIDATION_FAILED')
  t.equal((await send('POST', '/servers', `{"name":"logged","url":"${second.url}" "weight":1}`)).statusCode, 400, 'a body that is not JSON')
  t.equal((await send('POST', '/servers', `{"name":"logged","url":"${second.url}`)).statusCode, 400, 'a body cut short')
  await send('POST', '/servers', { name: 'logged', url: `${second.url}?sslrootcert=/nonexistent/root.crt` })
  t.equal((await send('POST', '/servers', { name: 'logged', url: second.url })).statusCode, 201)
  t.match((await send('GET', '/servers/logged')).json(), { name: 'logged', reachable: true })
  t.equal((await send('DELETE', '/servers/logged')).statusCode, 204)

  t.ok(lines.some((line) => line.includes('"msg":"incoming request"') && line.includes('/servers')), 'the requests were logged')
  t.ok(lines.some((line) => line.includes('SERVER_UNUSABLE')), 'and the refusals')
  for (const secret of secrets) t.notOk(lines.some((line) => line.includes(secret)), `no log line carries ${secret === secondPassword ? 'the second server\'s password' : 'a URL or password given'}`)
})

t.test('the OpenAPI document lists the server operations and POST /tenants\' server', async (t) => {
  const res = await call('GET', '/docs/json', undefined, {})
  t.equal(res.statusCode, 200)
  const spec = res.json()
  const operations = [['/servers', 'get'], ['/servers', 'post'], ['/servers/{name}', 'get'], ['/servers/{name}/drain', 'post'], ['/servers/{name}/resume', 'post'], ['/servers/{name}', 'delete']]
  for (const [path = '', method = ''] of operations) {
    const operation = spec.paths[path]?.[method]
    t.ok(operation, `${method.toUpperCase()} ${path}`)
    t.match(operation, { tags: ['admin'], summary: String, security: [{ bearer: [] }] })
  }
  t.ok(spec.paths['/tenants'].post.requestBody.content['application/json'].schema.properties.server, 'POST /tenants takes a server')
  t.ok(spec.paths['/servers'].post.requestBody.content['application/json'].schema.properties.budget, 'POST /servers takes a budget')
  t.notOk(JSON.stringify(spec.paths['/servers'].get.responses['200']).includes('"url"'), 'no URL in the Server shape')
})

t.test('a URL whose parameters name a file, there or not, is refused as invalid, the file is not read, and nothing is recorded', async (t) => {
  for (const parameters of ['sslrootcert=/nonexistent/root.crt', 'sslcert=/etc/hostname', 'sslkey=/etc/hostname&sslmode=require', 'sslcrl=/etc/hostname']) {
    const res = await call('POST', '/servers', { name: 'sslfile', url: `${second.url}?${parameters}` })
    t.match(res.json(), { statusCode: 400, code: 'VALIDATION_FAILED', message: /may not name files/ }, parameters)
  }
  t.same(await storedNames(), ['default'])
})

t.test('no answer carried an admin URL or a password given', async (t) => {
  t.ok(bodies.length > 50, `${bodies.length} answers`)
  for (const secret of secrets) t.notOk(bodies.some((body) => body.includes(secret)), secret === secondPassword ? 'the second server\'s password' : 'a URL or password given')
})
