import t from './helpers/tap.js'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { CATALOG_LOCK_POOL_MAX, CATALOG_POOL_MAX } from '../src/catalog/catalog-setup.js'
import { connectionFromUrl } from '../src/db/knex-config.js'
import type { Silo } from '../src/silo.js'
import { countWaitingBackends } from '../src/testing/backends.js'
import { databaseUrl, testApp, type Teardown } from './helpers/silo.js'
import { eventually } from './helpers/wait.js'

const token = 'admin-token-for-tests-0123456789'
const auth = { host: 'admin.localhost', authorization: `Bearer ${token}` }

/**
 * A tenant the catalog knows, with no database: suspend and resume change catalog rows only, and
 * a database per tenant would cost the teardown a checkpoint apiece (DROP DATABASE).
 */
async function catalogTenant (silo: Silo, slug: string): Promise<void> {
  const name = `${silo.config.tenantDbPrefix}${slug.replaceAll('-', '_')}`
  await silo.catalog.insertTenant({ slug, name: slug, databaseName: name, databaseUser: name, password: randomBytes(12).toString('hex'), domains: [`${slug}.test`] })
  await silo.catalog.activate(slug, await silo.migrator.latestVersion())
}

/**
 * A transaction of the test on the catalog that holds the tenants table in SHARE mode: reads go
 * on, every status change waits in PostgreSQL (holding the catalog connection it runs on) until
 * the test commits. So the operations are certainly under way, all at once, while the test looks.
 */
async function holdTenantWrites (t: Teardown, silo: Silo): Promise<{ waiting: () => Promise<number>, release: () => Promise<void> }> {
  const client = new pg.Client({ ...connectionFromUrl(databaseUrl(), silo.config.catalogDatabase), application_name: 'admin-concurrency-test' })
  await client.connect()
  t.teardown(async () => { await client.end().catch(() => {}) })
  await client.query('begin')
  await client.query('lock table tenants in share mode')
  return {
    // Asked outside the transaction, whose view of pg_stat_activity would stay as it first saw it.
    waiting: async () => await countWaitingBackends(silo.admin.knex, { database: silo.config.catalogDatabase, waitEventType: 'Lock' }),
    release: async () => { await client.query('commit') }
  }
}

const { silo, app } = await testApp(t, { ADMIN_TOKEN: token })
const slugs = Array.from({ length: 12 }, (_, i) => `busy-${String(i).padStart(2, '0')}`)
const bystanders = Array.from({ length: 4 }, (_, i) => `bystander-${i}`)
for (const slug of [...slugs, ...bystanders]) await catalogTenant(silo, slug)
await silo.syncCatalog()

const adminCall = async (method: 'GET' | 'POST', url: string) => await app.inject({ method, url, headers: auth })

t.test('12 concurrent suspends all succeed, and uncached hosts and /readyz are answered while they wait', async (t) => {
  const hold = await holdTenantWrites(t, silo)
  const suspends = slugs.map(async (slug) => await adminCall('POST', `/tenants/${slug}/suspend`))
  // As many operations as there are lock connections run at once, each waiting on its UPDATE.
  const running = Math.min(slugs.length, CATALOG_LOCK_POOL_MAX)
  t.ok(await eventually(async () => await hold.waiting() === running), `${running} suspends are under way at once, waiting on the catalog (${await hold.waiting()})`)

  for (const slug of bystanders) {
    const res = await app.inject({ url: '/tenant', headers: { host: `${slug}.test` } })
    t.equal(res.statusCode, 200, `${slug}.test, never looked up before, is resolved meanwhile (${res.body})`)
  }
  const ready = await app.inject({ url: '/readyz', headers: { host: 'admin.localhost' } })
  t.equal(ready.statusCode, 200, `/readyz answers meanwhile (${ready.body})`)

  await hold.release()
  const answers = await Promise.all(suspends)
  t.same(answers.map((res) => res.statusCode), slugs.map(() => 200), 'every suspend succeeded')
  const statuses = new Set((await silo.catalog.listTenants(slugs)).map((tenant) => tenant.status))
  t.same([...statuses], ['suspended'], 'and every tenant is suspended')
})

t.test('30 concurrent suspends and resumes over 12 tenants: each succeeds or finds its tenant locked, and the last one stands', async (t) => {
  const hold = await holdTenantWrites(t, silo)
  const operations = Array.from({ length: 30 }, (_, i) => {
    const slug = slugs[i % slugs.length] as string
    const action = i % 2 === 0 ? 'resume' : 'suspend'
    return { slug, action, answer: adminCall('POST', `/tenants/${slug}/${action}`) }
  })
  t.ok(await eventually(async () => await hold.waiting() === CATALOG_LOCK_POOL_MAX), `operations are under way, waiting on the catalog (${await hold.waiting()})`)
  await hold.release()

  const done = await Promise.all(operations.map(async (operation) => ({ ...operation, res: await operation.answer })))
  const unexpected = done.filter(({ res }) => !(res.statusCode === 200 || (res.statusCode === 409 && res.json().code === 'TENANT_LOCKED')))
  t.same(unexpected.map(({ slug, action, res }) => `${action} ${slug}: ${res.statusCode} ${res.body}`), [], 'every answer is 200, or 409 TENANT_LOCKED for another operation on the same tenant')
  t.ok(done.filter(({ res }) => res.statusCode === 200).length >= slugs.length, 'at least one operation per tenant succeeded')

  // The operation that changed a tenant last (the newest updatedAt among its successes) set its
  // final status; answers carry milliseconds, so at a tie either may have been last.
  const finals = new Map((await silo.catalog.listTenants(slugs)).map((tenant) => [tenant.slug, tenant.status]))
  for (const slug of slugs) {
    const succeeded = done.filter((operation) => operation.slug === slug && operation.res.statusCode === 200)
      .map(({ res }) => res.json() as { status: string, updatedAt: string })
    const newest = Math.max(...succeeded.map((answer) => Date.parse(answer.updatedAt)))
    const last = succeeded.filter((answer) => Date.parse(answer.updatedAt) === newest).map((answer) => answer.status)
    t.ok(last.includes(finals.get(slug) ?? ''), `${slug} is ${String(finals.get(slug))}, as its last operation left it (${last.join(' or ')})`)
  }
})

t.test('with every catalog connection taken, an admin call answers 503 CATALOG_BUSY, not TENANT_BUSY', async (t) => {
  const held: unknown[] = []
  t.teardown(async () => { for (const connection of held) await silo.catalog.knex.client.releaseConnection(connection) })
  for (let i = 0; i < CATALOG_POOL_MAX; i++) held.push(await silo.catalog.knex.client.acquireConnection())
  const [suspend, list] = await Promise.all([adminCall('POST', `/tenants/${slugs[0] ?? ''}/suspend`), adminCall('GET', '/tenants')])
  for (const res of [suspend, list]) {
    t.equal(res.statusCode, 503)
    t.match(res.json(), { statusCode: 503, code: 'CATALOG_BUSY', error: 'Service Unavailable' })
    t.equal(res.headers['retry-after'], '1', 'with Retry-After')
  }
  for (const connection of held.splice(0)) await silo.catalog.knex.client.releaseConnection(connection)
  t.equal((await adminCall('GET', '/tenants')).statusCode, 200, 'and the catalog serves again once connections are free')
})
