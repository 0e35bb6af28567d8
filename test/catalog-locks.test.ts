import { join } from 'node:path'
import t from './helpers/tap.js'
import pg from 'pg'
import { CATALOG_LOCK_POOL_MAX } from '../src/catalog/catalog-setup.js'
import { connectionFromUrl } from '../src/db/knex-config.js'
import type { Silo } from '../src/silo.js'
import { countWaitingBackends } from '../src/testing/backends.js'
import { runProcess } from './helpers/cli.js'
import { childEnv, root } from './helpers/compiled.js'
import { databaseUrl, testApp, testEnv, type Teardown } from './helpers/silo.js'
import { eventually, sleep } from './helpers/wait.js'

const token = 'admin-token-for-tests-0123456789'
const auth = { host: 'admin.localhost', authorization: `Bearer ${token}` }

/**
 * A session of the test on the catalog that holds the template's advisory lock exclusively, as a
 * refresh by another instance would: every clone waits for it in PostgreSQL until `release`.
 */
async function holdTemplateLock (t: Teardown, silo: Silo): Promise<{ waiting: () => Promise<number>, release: () => Promise<void> }> {
  const template = silo.template
  if (template === undefined) throw new Error('this test needs TENANT_TEMPLATE=on')
  await template.ready()
  const client = new pg.Client({ ...connectionFromUrl(databaseUrl(), silo.config.catalogDatabase), application_name: 'catalog-locks-test' })
  await client.connect()
  t.teardown(async () => { await client.end().catch(() => {}) })
  const key = `silo:template:${template.databaseName}`
  await client.query('select pg_advisory_lock(hashtextextended($1, 0))', [key])
  return {
    waiting: async () => await countWaitingBackends(silo.admin.knex, { database: silo.config.catalogDatabase, waitEventType: 'Lock', waitEvent: 'advisory' }),
    release: async () => { await client.query('select pg_advisory_unlock(hashtextextended($1, 0))', [key]) }
  }
}

/** Resolves with `promise`'s value, or with `timedOut` if it has not settled within `ms`. */
const within = async <T, U>(promise: Promise<T>, ms: number, timedOut: U): Promise<T | U> => await Promise.race([
  promise,
  new Promise<U>((resolve) => { setTimeout(() => { resolve(timedOut) }, ms).unref() })
])

t.test('more creates than lock connections, all waiting on the template lock, each take it on their own lock session and all complete', async (t) => {
  const { silo, app } = await testApp(t, { ADMIN_TOKEN: token })
  const hold = await holdTemplateLock(t, silo)
  const CREATES = CATALOG_LOCK_POOL_MAX + 2
  const creates = Array.from({ length: CREATES }, async (_, i) =>
    await app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: `nested-${i}`, domains: [`nested-${i}.test`] } }))
  // Each create holds its tenant's lock and waits for the template's, on the same session: the
  // lock pool is full, and the two creates left wait for a lock connection.
  t.ok(await eventually(async () => await hold.waiting() === CATALOG_LOCK_POOL_MAX),
    `${CATALOG_LOCK_POOL_MAX} creates wait for the template lock (${await hold.waiting()})`)
  // Longer than a catalog query may wait for a connection (5 s): the two creates queued for a
  // lock connection wait their turn, as an operation does, rather than fail with CATALOG_BUSY.
  await sleep(5500)
  await hold.release()
  const answers = await Promise.all(creates)
  t.same(answers.map((res) => res.statusCode), answers.map(() => 201), `every create succeeded (${answers.map((res) => res.statusCode).join(', ')})`)
  t.equal((await silo.catalog.listTenants()).filter((tenant) => tenant.status === 'active').length, CREATES)
})

t.test('a create that claims a spare answers while the spare made after it waits for the template', async (t) => {
  const { silo, app } = await testApp(t, { ADMIN_TOKEN: token, TENANT_SPARES: 1 })
  await silo.spares?.settled()
  const hold = await holdTemplateLock(t, silo)
  const created = await within(app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'claimer', domains: ['claimer.test'] } }), 10000, 'no answer within 10 s')
  t.equal(typeof created === 'string' ? created : created.statusCode, 201, 'the create answered, from the spare')
  t.ok(await eventually(async () => await hold.waiting() === 1), 'the next spare waits for the template lock, outside the create')
  await hold.release()
  await silo.spares?.settled()
  t.equal((await app.inject({ url: '/tenant', headers: { host: 'claimer.test' } })).statusCode, 200, 'the tenant serves')
})

t.test('once no operation holds a lock session, promise hooks are off again: the request path does not pay for what a create needed', async (t) => {
  // Node 20 turns promise hooks on for AsyncLocalStorage (the locks' session), for every promise of the process.
  const { silo } = await testApp(t, { ADMIN_TOKEN: token })
  const env = { ...testEnv({ ADMIN_TOKEN: token, CATALOG_DATABASE: silo.config.catalogDatabase, TENANT_DB_PREFIX: silo.config.tenantDbPrefix }), PROBE_SLUG: 'hooks' }
  const probe = await runProcess(process.execPath, [join(root, 'dist/test/helpers/hooks-probe.js')], { cwd: root, env: childEnv(env) })
  t.equal(probe.code, 0, probe.stderr)
  t.same(JSON.parse(probe.stdout), { before: false, during: true, created: 201, after: false },
    'off before, on while an operation holds its session (its inner locks find it), off again after the create')
})
