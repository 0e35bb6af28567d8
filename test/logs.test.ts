import { randomBytes } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import t from './helpers/tap.js'
import type { Test } from 'tap'
import { buildApp } from '../src/app.js'
import { createLogger } from '../src/logger.js'
import { openSilo } from '../src/silo.js'
import { countTenantBackends } from '../src/testing/backends.js'
import { closeInTeardown, createTenant, testConfig } from './helpers/silo.js'
import { eventually, sleep } from './helpers/wait.js'

interface LogLine {
  level: number
  msg?: string
  reqId?: string
  tenant?: string
  req?: { host?: string, method?: string, url?: string }
  [key: string]: unknown
}

const ADMIN_TOKEN = `admin-token-${randomBytes(16).toString('hex')}`
const WRONG_TOKEN = `wrong-token-${randomBytes(16).toString('hex')}`
const SECRET_KEY = `secret-key-${randomBytes(16).toString('hex')}`
/** What the test-only route's unexpected error carries: SQL, a connection string with a password, a stack. */
const LEAKY_PASSWORD = `hunter2-${randomBytes(8).toString('hex')}`
const LEAKY_SQL = 'select "token", "password" from "internal_secrets" where "id" = $1'
const LEAKY_URL = `postgres://app_user:${LEAKY_PASSWORD}@db.internal:5432/silo_catalog`

const TENANT_HOSTS: Record<string, string> = { 'acme.test': 'acme', 'globex.test': 'globex', 'initech.test': 'initech' }
const POSTGRES_URL_WITH_PASSWORD = /postgres(?:ql)?:\/\/[^\s:/@"]+:(?!\[redacted\]@)[^\s@/"]+@/i

const config = testConfig({ ADMIN_TOKEN, SECRET_KEY })
const captured: string[] = []
const logger = createLogger('trace', { write: (line: string) => { captured.push(line) } })
const opened = closeInTeardown(t, config)

const silo = opened.silo = await openSilo(config)
await createTenant(silo, 'acme', { seed: true })
await createTenant(silo, 'globex')
const app = opened.app = await buildApp(silo, { config, logger })
app.get('/boom', async () => {
  const error = new Error(`${LEAKY_SQL} - connect to ${LEAKY_URL} failed`)
  throw Object.assign(error, { config: { connection: { host: 'db.internal', password: LEAKY_PASSWORD } }, connectionString: LEAKY_URL })
})
await app.ready()

const lines = (): LogLine[] => captured.map((line) => JSON.parse(line) as LogLine)
const inject = async (host: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, options: { payload?: unknown, token?: string } = {}): Promise<LightMyRequestResponse> =>
  await app.inject({
    method,
    url,
    headers: { host, ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }) },
    ...(options.payload === undefined ? {} : { payload: options.payload as Record<string, unknown> })
  })

/** A 5xx body must say what went wrong in Silo's words only. */
function assertCleanServerError (t: Test, response: LightMyRequestResponse, code: string): void {
  t.equal(response.headers['content-type'], 'application/json; charset=utf-8')
  const body = response.json<Record<string, unknown>>()
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], 'only the contract fields')
  t.equal(body.code, code)
  t.equal(body.statusCode, response.statusCode)
  t.notMatch(response.body, /\n\s+at /, 'no stack')
  t.notMatch(response.body, /postgres(ql)?:\/\//i, 'no connection string')
  t.notMatch(response.body, /\b(select|insert|update|delete)\b.*\bfrom\b|internal_secrets|db\.internal/i, 'no SQL, no server names')
  t.notOk(response.body.includes(LEAKY_PASSWORD), 'no password')
}

t.test('ordinary tenant traffic, validation errors and unknown hosts', async (t) => {
  t.equal((await inject('acme.test', 'GET', '/articles')).statusCode, 200)
  t.equal((await inject('globex.test', 'GET', '/tenant')).statusCode, 200)
  const created = await inject('acme.test', 'POST', '/articles', { payload: { title: 'Logged', body: 'text' } })
  t.equal(created.statusCode, 201)
  const id = created.json<{ id: number }>().id
  t.equal((await inject('acme.test', 'PATCH', `/articles/${id}`, { payload: { published: true } })).statusCode, 200)
  t.equal((await inject('acme.test', 'GET', `/articles/${id}`)).statusCode, 200)
  t.equal((await inject('acme.test', 'DELETE', `/articles/${id}`)).statusCode, 204)
  t.equal((await inject('acme.test', 'GET', `/articles/${id}`)).statusCode, 404)
  t.equal((await inject('acme.test', 'GET', '/no-such-route')).statusCode, 404)
  t.equal((await inject('acme.test', 'POST', '/articles', { payload: { title: '', extra: 1 } })).json<{ code: string }>().code, 'VALIDATION_FAILED')
  t.equal((await inject('globex.test', 'GET', '/articles?limit=1000')).json<{ code: string }>().code, 'VALIDATION_FAILED')
  t.equal((await inject('globex.test', 'GET', '/articles?cursor=not-a-cursor')).json<{ code: string }>().code, 'VALIDATION_FAILED')
  t.equal((await inject('nobody.test', 'GET', '/articles')).json<{ code: string }>().code, 'TENANT_NOT_FOUND')
  t.equal((await inject('bad host!', 'GET', '/articles')).json<{ code: string }>().code, 'HOST_INVALID')
  t.equal((await inject('nobody.test', 'GET', '/healthz')).statusCode, 200)
})

t.test('admin requests with the right, a wrong and no token', async (t) => {
  const admin = config.adminHost
  t.equal((await inject(admin, 'GET', '/tenants', { token: ADMIN_TOKEN })).statusCode, 200)
  t.equal((await inject(admin, 'GET', '/tenants', { token: WRONG_TOKEN })).json<{ code: string }>().code, 'UNAUTHORIZED')
  t.equal((await inject(admin, 'GET', '/tenants')).statusCode, 401)
  const created = await inject(admin, 'POST', '/tenants', { token: ADMIN_TOKEN, payload: { slug: 'initech', domains: ['initech.test'] } })
  t.equal(created.statusCode, 201, created.body)
  t.equal((await inject(admin, 'POST', '/tenants', { token: WRONG_TOKEN, payload: { slug: 'hooli', domains: ['hooli.test'] } })).statusCode, 401)
  t.equal((await inject('initech.test', 'GET', '/articles')).statusCode, 200)
})

t.test('a tenant whose database is down gets a clean 503, and the cause is logged', async (t) => {
  const core = silo
  const acme = await core.catalog.tenantBySlug('acme')
  if (acme === null) throw new Error('no acme')
  const adminDb = core.admin.knex
  t.teardown(async () => { await adminDb.raw('ALTER DATABASE ?? ALLOW_CONNECTIONS true', [acme.database.name]) })
  await adminDb.raw('ALTER DATABASE ?? ALLOW_CONNECTIONS false', [acme.database.name])
  await adminDb.raw('select pg_terminate_backend(pid) from pg_stat_activity where datname = ? and pid <> pg_backend_pid()', [acme.database.name])
  // Termination is asynchronous: wait until the backends are gone and the pool has heard of it.
  if (!await eventually(async () => await countTenantBackends(core, { slugs: ['acme'] }) === 0)) throw new Error('the backends of acme did not go away')
  await sleep(200)

  const before = captured.length
  const response = await inject('acme.test', 'GET', '/articles')
  t.equal(response.statusCode, 503, `a database that refuses connections is TENANT_UNAVAILABLE, not an internal error: ${response.body}`)
  t.ok(response.headers['retry-after'], 'Retry-After')
  assertCleanServerError(t, response, 'TENANT_UNAVAILABLE')
  const logged = lines().slice(before).find((line) => line.level >= 50 && line.err !== undefined)
  t.ok(logged, 'the cause is logged at error level')
  t.equal(logged?.tenant, 'acme', 'and names the tenant')
  t.match((logged?.err as { message?: string } | undefined)?.message, /not currently accepting connections|terminat/i, "PostgreSQL's reason is in the log")

  await adminDb.raw('ALTER DATABASE ?? ALLOW_CONNECTIONS true', [acme.database.name])
  t.equal((await inject('acme.test', 'GET', '/articles')).statusCode, 200, 'served again once the database is back')
})

t.test('an unexpected error is a bare 500 INTERNAL_ERROR; its details go to the log, scrubbed', async (t) => {
  const before = captured.length
  const response = await inject('globex.test', 'GET', '/boom')
  t.equal(response.statusCode, 500)
  assertCleanServerError(t, response, 'INTERNAL_ERROR')
  t.same(response.json(), { statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'Internal server error' })

  const logged = lines().slice(before).find((line) => line.level >= 50 && line.err !== undefined)
  t.ok(logged, 'the error is logged')
  t.equal(logged?.tenant, 'globex')
  const err = logged?.err as { message?: string, stack?: string } | undefined
  t.match(err?.message, /internal_secrets/, 'the log keeps what an operator needs: the SQL')
  t.match(err?.stack, /\n\s+at /, 'and the stack')
  t.match(err?.message, /postgres:\/\/app_user:[^@]*@db\.internal/, 'and where it tried to connect, password aside')
})

t.test('captured logs never contain a password, a token or the secret key', async (t) => {
  const text = captured.join('')
  t.ok(lines().length > 50, `logs were captured (${lines().length} lines)`)
  const secrets: Record<string, string> = { ADMIN_TOKEN, 'the wrong token that was sent': WRONG_TOKEN, SECRET_KEY, 'a password in an error': LEAKY_PASSWORD }
  for (const slug of ['acme', 'globex', 'initech']) {
    const tenant = await silo.catalog.tenantBySlug(slug)
    if (tenant === null) throw new Error(`no ${slug}`)
    secrets[`${slug}'s database password`] = tenant.database.password
  }
  const adminPassword = silo.server.password
  if (adminPassword !== undefined && adminPassword !== '') secrets['the admin URL password'] = adminPassword
  for (const [what, secret] of Object.entries(secrets)) t.notOk(text.includes(secret), `no ${what} in the logs`)
  t.notMatch(text, POSTGRES_URL_WITH_PASSWORD, 'no postgres URL with a password')
})

t.test('every log line of a tenant request names the tenant', async (t) => {
  const byRequest = new Map<string, LogLine[]>()
  for (const line of lines()) {
    if (line.reqId === undefined) continue
    byRequest.set(line.reqId, [...(byRequest.get(line.reqId) ?? []), line])
  }
  t.ok(byRequest.size > 20, `requests were logged (${byRequest.size})`)
  let tenantRequests = 0
  for (const [reqId, requestLines] of byRequest) {
    const incoming = requestLines.filter((line) => line.msg === 'incoming request')
    t.equal(incoming.length, 1, `${reqId} has one "incoming request" line`)
    t.equal(requestLines.filter((line) => line.msg === 'request completed').length, 1, `${reqId} has one "request completed" line`)
    const slug = TENANT_HOSTS[incoming[0]?.req?.host ?? '']
    if (slug === undefined) {
      t.notOk(requestLines.some((line) => line.tenant !== undefined), `${reqId} (${incoming[0]?.req?.host ?? 'no host'}) is not a tenant request and names no tenant`)
      continue
    }
    tenantRequests++
    const unnamed = requestLines.filter((line) => line.tenant !== slug).map((line) => line.msg)
    t.same(unnamed, [], `every line of ${reqId} (${incoming[0]?.req?.method ?? ''} ${incoming[0]?.req?.url ?? ''} on ${slug}) carries tenant ${slug}`)
  }
  t.ok(tenantRequests >= 10, `tenant requests were checked (${tenantRequests})`)
})

t.test('at warn, a request that writes no line makes no child logger; one that does carries its request id and tenant', async (t) => {
  const warnLines: string[] = []
  const warnLogger = createLogger('warn', { write: (line: string) => { warnLines.push(line) } })
  let children = 0
  const child = warnLogger.child.bind(warnLogger)
  warnLogger.child = ((...args: Parameters<typeof child>) => { children++; return child(...args) }) as typeof warnLogger.child
  const quiet = await buildApp(silo, { config, logger: warnLogger })
  t.teardown(async () => { await quiet.close() })
  quiet.get('/test/warn', async (request) => {
    request.log.warn({ detail: 'something odd' }, 'noted')
    return { ok: true }
  })
  quiet.get('/test/fail', async () => { throw new Error('an unexpected failure') })
  await quiet.ready()
  const atStart = children
  for (let i = 0; i < 20; i++) t.equal((await quiet.inject({ url: '/articles?limit=1', headers: { host: 'acme.test' } })).statusCode, 200)
  t.equal(children - atStart, 0, `twenty served requests made no child logger (the app made ${atStart} at start)`)
  t.same(warnLines, [], 'and wrote nothing')
  t.equal((await quiet.inject({ url: '/test/warn', headers: { host: 'globex.test' } })).statusCode, 200)
  t.equal(children - atStart, 1, 'a request that writes a line makes one child, with every binding')
  t.equal((await quiet.inject({ url: '/test/fail', headers: { host: 'acme.test' } })).statusCode, 500)
  const written = warnLines.map((line) => JSON.parse(line) as LogLine)
  t.match(written, [
    { level: 40, msg: 'noted', tenant: 'globex', reqId: String, detail: 'something odd' },
    { level: 50, tenant: 'acme', reqId: String }
  ], 'each line names its request and its tenant')
  t.not(written[0]?.reqId, written[1]?.reqId)
})
