import http from 'node:http'
import t from './helpers/tap.js'
import { loadConfig } from '../src/config.js'
import { devBanner } from '../src/start-up.js'
import { runCli } from './helpers/cli.js'
import { spawnServer, type SpawnedServer } from './helpers/server.js'
import { createTenant, dropTestDatabases, testEnv, testSilo, type Teardown } from './helpers/silo.js'

/*
 * What the server says and checks when it starts, on the spawned server (the compiled build, as
 * `npm start` runs it) outside embedded dev mode, and the dev-mode banner as text.
 */

const token = 'admin-token-server-start-0123456789'

/** Exactly `env`: no variable of the caller's shell reaches the server. */
const startServer = (t: Teardown, env: Record<string, string | number>): SpawnedServer => spawnServer(t, env, { baseEnv: {} })

const get = async (port: number, host: string, path: string): Promise<number> => await new Promise((resolve, reject) => {
  http.get({ host: '127.0.0.1', port, path, headers: { host } }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject)
})

t.test('outside dev mode the server logs one line with the admin host and the docs URL, and never the admin token', async (t) => {
  const env = testEnv({ LOG_LEVEL: 'info', PORT: 0, ADMIN_TOKEN: token })
  t.teardown(async () => { await dropTestDatabases(loadConfig(env, { env: false, dotenv: false })) })
  const server = startServer(t, env)
  const port = await server.listening(60000)
  // Logged right after "Server listening": a short wait is enough once that line is there.
  const line = await server.waitForLog((l) => l.adminHost !== undefined, 10000)
  t.match(line, { level: 30, adminHost: 'admin.localhost', docs: `http://admin.localhost:${port}/docs` })
  t.ok(String(line.msg).includes(`http://admin.localhost:${port}/docs`), 'the message names the docs URL')
  t.equal(await get(port, `admin.localhost:${port}`, '/docs/json'), 200, 'and the docs are there')
  t.equal((await server.stop()).code, 0)
  t.notOk(server.output().includes(token), 'the admin token appears nowhere in the output')
  t.notOk(server.output().includes('Silo is running'), 'no dev banner')
})

t.test('in dev mode the banner names the docs and console URLs, the admin token and the demo tenant URLs', async (t) => {
  const banner = devBanner({ adminHost: 'admin.localhost', adminToken: token, dataDir: '.data' }, 3000)
  for (const expected of ['http://admin.localhost:3000/docs', 'http://admin.localhost:3000/console', token, 'http://acme.localhost:3000/articles', 'http://globex.localhost:3000/articles']) {
    t.ok(banner.includes(expected), expected)
  }
})

t.test('a tenant holding the admin host as a domain stops the server from starting; the CLI still works and fixes it', async (t) => {
  const silo = await testSilo(t)
  const acme = await createTenant(silo, 'acme', { domains: ['acme.test'] })
  // The provisioner refuses the admin host as a domain; a catalog can still hold one (added
  // under another ADMIN_HOST, or by hand), so it goes straight into the catalog here.
  await silo.catalog.addDomain(acme.id, 'admin.localhost')
  const env = testEnv({
    LOG_LEVEL: 'info',
    PORT: 0,
    ADMIN_TOKEN: token,
    CATALOG_DATABASE: silo.config.catalogDatabase,
    TENANT_DB_PREFIX: silo.config.tenantDbPrefix
  })

  const refused = startServer(t, env)
  const outcome = await Promise.race([
    refused.exited.then(({ code }) => ({ code })),
    refused.listening(60000).then(() => ({ code: 'listening' }), () => ({ code: 'neither' }))
  ])
  t.not(outcome.code, 'listening', 'the server does not start')
  await refused.stop()
  t.ok(outcome.code !== 0 && typeof outcome.code === 'number', `exits non-zero (${String(outcome.code)})`)
  const lines = refused.output().trim().split('\n').filter((text) => !text.startsWith('{'))
  t.equal(lines.length, 1, `one line: ${refused.output()}`)
  t.match(lines[0], /^silo: ADMIN_HOST admin\.localhost is also a domain of tenant acme\b/)
  t.match(lines[0], /npm run tenants -- domains remove admin\.localhost/, 'says how to fix it')
  t.match(lines[0], /or set ADMIN_HOST to another host/)

  const list = await runCli(['list'], env)
  t.equal(list.code, 0, `the CLI works in that state: ${list.stderr}`)
  t.match(list.stdout, /admin\.localhost/)
  const removed = await runCli(['domains', 'remove', 'admin.localhost'], env)
  t.equal(removed.code, 0, removed.stderr)

  const started = startServer(t, env)
  await started.listening(60000)
  t.pass('once the domain is removed the server starts')
  t.equal((await started.stop()).code, 0)
})
