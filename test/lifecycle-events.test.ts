import t from './helpers/tap.js'
import type { SiloEventMap } from '../src/events.js'
import { migrateFleet } from '../src/lifecycle/fleet-migrator.js'
import { spawnServer } from './helpers/server.js'
import { createTenant, databaseUrl, testApp, testEnv } from './helpers/silo.js'

t.test('an embedding application hears every lifecycle event, in order', async (t) => {
  const { silo, app } = await testApp(t, { TENANT_POOLS_MAX: 1 })
  const heard: string[] = []
  for (const event of ['tenant:created', 'tenant:migrated', 'tenant:suspended', 'tenant:resumed', 'tenant:dropped', 'pool:opened', 'pool:evicted'] as const) {
    silo.events.on(event, ((payload: { slug: string, reason?: string }) => { heard.push(`${event} ${payload.slug}${payload.reason === undefined ? '' : ` ${payload.reason}`}`) }) as (...args: SiloEventMap[typeof event]) => void)
  }
  await createTenant(silo, 'acme')
  await createTenant(silo, 'globex')
  await app.inject({ url: '/articles', headers: { host: 'acme.test' } })
  await app.inject({ url: '/articles', headers: { host: 'globex.test' } })
  const acme = await silo.catalog.tenantBySlug('acme')
  if (acme === null) throw new Error('no acme')
  await silo.migrator.rollback(acme)
  await migrateFleet(silo.catalog, silo.migrator, ['acme'], { concurrency: 1, events: silo.events })
  await silo.provisioner.setStatus('globex', 'suspended')
  await silo.provisioner.setStatus('globex', 'active')
  await silo.provisioner.drop('acme')
  t.same(heard, [
    'tenant:created acme', 'tenant:created globex',
    'pool:opened acme', 'pool:opened globex', 'pool:evicted acme lru',
    'tenant:migrated acme',
    'pool:evicted globex removed', 'tenant:suspended globex', 'tenant:resumed globex',
    'tenant:dropped acme'
  ])
})

t.test('tenant passwords are stored encrypted, never in plain text', async (t) => {
  const { silo } = await testApp(t)
  await createTenant(silo, 'acme')
  const tenant = await silo.catalog.tenantBySlug('acme')
  const row = await silo.catalog.knex('tenants').where({ slug: 'acme' }).first()
  const stored = JSON.stringify(row)
  t.notOk(stored.includes(tenant?.database.password ?? '<none>'), 'the catalog row does not contain the password')
  t.match(row.db_password, /^v2:[\w-]{12}:[\w-]+:[\w-]+:[\w-]+$/, 'AES-GCM envelope naming its key id')
  const { rows } = await silo.admin.knex.raw('select rolpassword from pg_authid where rolname = ?', [tenant?.database.user ?? '']) as { rows: Array<{ rolpassword: string }> }
  t.match(rows[0]?.rolpassword, /^SCRAM-SHA-256\$/, 'PostgreSQL holds a SCRAM verifier')
})

t.test('outside embedded dev mode the server refuses to start without SECRET_KEY', async (t) => {
  const server = spawnServer(t, { ...testEnv(), DATABASE_URL: databaseUrl(), PORT: '0', SECRET_KEY: undefined })
  const { code } = await server.exited
  const stderr = server.stderr()
  t.equal(code, 1)
  t.match(stderr, /SECRET_KEY is required/)
  t.equal(stderr.trim().split('\n').length, 1, 'one clear line')
})
