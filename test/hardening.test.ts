import pg from 'pg'
import t from './helpers/tap.js'
import { openSilo } from '../src/silo.js'
import { runCli } from './helpers/cli.js'
import { startEmbeddedServer } from './helpers/embedded.js'
import { testConfig, testEnv } from './helpers/silo.js'

// What a tenant role can reach on a server Silo does not run itself: PostgreSQL opens its own
// databases (postgres, template1) to PUBLIC, so to every tenant role, until `tenants harden`.
// A server of the test's own, since hardening changes the whole server.
const server = await startEmbeddedServer()
t.teardown(async () => { await server.destroy() })
const env = testEnv({ DATABASE_URL: server.url })
const silo = await openSilo(testConfig(env))
t.teardown(async () => { await silo.close() })
await silo.provisioner.create({ slug: 'acme', domains: ['acme.test'], seed: true })
const acme = await silo.catalog.tenantBySlug('acme')
if (acme === null) throw new Error('no acme')
// Another application's login role, which reaches `postgres` through PUBLIC only.
await silo.admin.knex.raw("create role app_user login password 'app-user-password'")

const { hostname, port } = new URL(server.url)
/** Connects as `user` to `database` (and with `temp`, creates a temporary table); resolves when it could. */
async function reach (user: string, password: string, database: string, options: { temp?: boolean } = {}): Promise<void> {
  const client = new pg.Client({ host: hostname, port: Number(port), user, password, database })
  await client.connect()
  try {
    if (options.temp === true) await client.query('create temporary table probe (i int)')
  } finally {
    await client.end()
  }
}
const asAcme = async (database: string, options: { temp?: boolean } = {}): Promise<void> => {
  await reach(acme.database.user, acme.database.password, database, options)
}

t.test('before harden: a tenant role reaches postgres, and doctor says so', async (t) => {
  await asAcme(acme.database.name, { temp: true })
  await asAcme('postgres', { temp: true })
  t.pass('acme\'s role connects to postgres and creates a temporary table there')
  await asAcme('template1')
  t.pass('and connects to template1')
  await t.rejects(asAcme('template1', { temp: true }), { code: '42501' }, 'where PUBLIC has CONNECT but not TEMPORARY')
  const doctor = await runCli(['doctor', '--json'], env)
  t.equal(doctor.code, 0, 'a warning, not a problem of the catalog')
  t.match(JSON.parse(doctor.stdout).report.exposed, [
    { database: 'postgres', privileges: ['CONNECT', 'TEMPORARY'], hardenable: true },
    { database: 'template1', privileges: ['CONNECT'], hardenable: true }
  ])
  const text = await runCli(['doctor'], env)
  t.match(text.stdout, /warning: every tenant role can reach database postgres \(CONNECT, TEMPORARY granted to PUBLIC\); `tenants harden` closes it/)
})

t.test('harden shows what it will change, and changes nothing without --yes', async (t) => {
  const shown = await runCli(['harden'], env)
  t.equal(shown.code, 1, 'something to do: exit 1')
  t.match(shown.stdout, /will revoke CONNECT, TEMPORARY on database postgres from PUBLIC/)
  t.match(shown.stdout, /will revoke CONNECT on database template1 from PUBLIC/)
  t.match(shown.stdout, /will lose CONNECT on postgres: role app_user \(GRANT CONNECT ON DATABASE postgres TO app_user gives it back\)/)
  t.notMatch(shown.stdout, new RegExp(acme.database.user), 'Silo\'s own roles are not listed as losing anything')
  await asAcme('postgres')
  t.pass('nothing changed')
})

t.test('after harden --yes a tenant role reaches its own database only', async (t) => {
  const done = await runCli(['harden', '--yes'], env)
  t.equal(done.code, 0, done.stderr)
  t.match(done.stdout, /revoked CONNECT, TEMPORARY on database postgres from PUBLIC/)
  await t.rejects(asAcme('postgres'), { code: '42501' }, 'postgres is closed to the tenant role')
  await t.rejects(asAcme('template1'), { code: '42501' }, 'so is template1')
  await asAcme(acme.database.name, { temp: true })
  t.pass('its own database still works')
  await t.rejects(reach('app_user', 'app-user-password', 'postgres'), { code: '42501' }, 'a role that relied on PUBLIC lost it, as the plan said')
  await reach('postgres', new URL(server.url).password === '' ? '' : decodeURIComponent(new URL(server.url).password), 'postgres')
  t.pass('the admin still connects to postgres')
  const again = await runCli(['harden'], env)
  t.equal(again.code, 0)
  t.match(again.stdout, /nothing to do/)
  const doctor = JSON.parse((await runCli(['doctor', '--json'], env)).stdout)
  t.same(doctor.report.exposed.filter((entry: { hardenable: boolean }) => entry.hardenable), [], 'doctor has nothing left to warn about')
})
