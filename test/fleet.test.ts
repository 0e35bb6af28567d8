import t from './helpers/tap.js'
import { migrateFleet } from '../src/lifecycle/fleet-migrator.js'
import { createTenant, testApp } from './helpers/silo.js'

const { silo, app } = await testApp(t)
const slugs = ['t-a', 't-b', 't-c', 't-d', 't-e']
for (const slug of slugs) await createTenant(silo, slug)
const latest = await silo.migrator.latestVersion()

t.test('a fleet run where one tenant fails still migrates every other tenant and records the failure', async (t) => {
  const rolledBack = await migrateFleet(silo.catalog, silo.migrator, slugs, { direction: 'rollback', concurrency: 3 })
  t.same(rolledBack.map((r) => [r.slug, r.status, r.after]), slugs.map((slug) => [slug, 'migrated', null]))

  // t-b gets a table in the way of the next migration: its migration will fail.
  const sabotaged = await silo.catalog.tenantBySlug('t-b')
  if (sabotaged === null) throw new Error('no t-b')
  await silo.migrator.withDatabase(sabotaged, async (db) => { await db.raw('create table articles (id int)') })

  const seen: string[] = []
  const results = await migrateFleet(silo.catalog, silo.migrator, slugs, { concurrency: 2, runId: '00000000-0000-4000-8000-000000000001', onResult: (r) => { seen.push(r.slug) } })
  t.same(seen.sort(), slugs, 'every tenant was attempted and reported')
  t.same(results.map((r) => r.slug), slugs, 'results come back in slug order')
  const failed = results.filter((r) => r.status === 'failed')
  t.same(failed.map((r) => r.slug), ['t-b'])
  t.match(failed[0]?.error, /articles/)
  t.ok(results.filter((r) => r.slug !== 't-b').every((r) => r.status === 'migrated' && r.after === latest && r.before === null))
  t.ok(results.every((r) => r.durationMs >= 0))

  const runs = await silo.catalog.runs.list({ runId: '00000000-0000-4000-8000-000000000001' })
  t.equal(runs.length, 5, 'one catalog row per tenant')
  t.match(runs.find((r) => r.slug === 't-b'), { status: 'failed', before: null, after: null, error: /articles/ })
  t.match(runs.find((r) => r.slug === 't-a'), { status: 'migrated', before: null, after: latest, applied: [latest] })

  const versions = Object.fromEntries((await silo.catalog.listTenants()).map((tenant) => [tenant.slug, tenant.schemaVersion]))
  t.same(versions, { 't-a': latest, 't-b': null, 't-c': latest, 't-d': latest, 't-e': latest })

  silo.resolver.clear()
  const guarded = await app.inject({ url: '/articles', headers: { host: 't-b.test' } })
  t.equal(guarded.statusCode, 503, 'the tenant left behind is not served by code that needs the new schema')
  t.equal((await app.inject({ url: '/articles', headers: { host: 't-a.test' } })).statusCode, 200)

  await silo.migrator.withDatabase(sabotaged, async (db) => { await db.raw('drop table articles') })
  const retry = await migrateFleet(silo.catalog, silo.migrator, slugs, { concurrency: 5 })
  t.same(retry.map((r) => r.status), ['up-to-date', 'migrated', 'up-to-date', 'up-to-date', 'up-to-date'], 'a re-run fixes the one left behind')
})

t.test('unknown tenants fail in their own result without stopping the run', async (t) => {
  const results = await migrateFleet(silo.catalog, silo.migrator, ['t-a', 'nobody'], { concurrency: 1 })
  t.same(results.map((r) => [r.slug, r.status]), [['nobody', 'failed'], ['t-a', 'up-to-date']])
})
