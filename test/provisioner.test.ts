import t from './helpers/tap.js'
import { Provisioner, type ProvisioningStep } from '../src/lifecycle/provisioner.js'
import type { Silo } from '../src/silo.js'
import { tenantFootprint, testApp } from './helpers/silo.js'

const { silo, app } = await testApp(t)
const prefix = silo.config.tenantDbPrefix

const footprint = async (slug: string) => await tenantFootprint(silo, slug)
const nothing = { catalog: null, database: false, role: false }

const faultyProvisioner = (silo: Silo, failAt: ProvisioningStep): Provisioner => new Provisioner({
  catalog: silo.catalog,
  servers: silo.servers,
  migrator: silo.migrator,
  prefix,
  resolver: silo.resolver,
  pools: silo.pools,
  beforeStep: (step) => { if (step === failAt) throw new Error(`injected fault before ${step}`) }
})

t.test('a create that fails at any step leaves nothing behind, and a re-run succeeds', async (t) => {
  for (const step of ['catalog', 'role', 'database', 'migrate', 'seed', 'activate'] as const) {
    const slug = `fail-${step}`
    await t.rejects(faultyProvisioner(silo, step).create({ slug, domains: [`${slug}.test`], seed: true }),
      { code: step === 'catalog' ? undefined : 'PROVISIONING_FAILED' }, `fails at ${step}`)
    t.same(await footprint(slug), nothing, `nothing left after a fault at ${step}`)
    t.equal((await app.inject({ url: '/articles', headers: { host: `${slug}.test` } })).statusCode, 404, 'and nothing is served')
    await silo.provisioner.create({ slug, domains: [`${slug}.test`], seed: true })
    t.same(await footprint(slug), { catalog: 'active', database: true, role: true }, `re-run after ${step} completes`)
    const served = await app.inject({ url: '/articles', headers: { host: `${slug}.test` } })
    t.equal(served.statusCode, 200)
    t.equal(served.json().items.length, 5, 'with its seed articles, once')
  }
})

t.test('a create interrupted by a crash (row, role and database left) is completed by a re-run', async (t) => {
  const slug = 'crashed'
  const name = `${prefix}${slug}`
  // What a process killed after creating the database leaves: a provisioning row, a role, an empty database.
  const half = await silo.catalog.insertTenant({ slug, name: slug, databaseName: name, databaseUser: name, password: 'left-behind-password', domains: ['crashed.test'] })
  await silo.admin.ensureRole(half.database.user, half.database.password, silo.ownership.mark('tenant'))
  await silo.admin.ensureDatabase(half.database.name, half.database.user, { mark: silo.ownership.mark('tenant') })
  const unavailable = await app.inject({ url: '/articles', headers: { host: 'crashed.test' } })
  t.equal(unavailable.statusCode, 503, 'a half-made tenant is not served')
  t.equal(unavailable.json().code, 'TENANT_UNAVAILABLE')

  await silo.provisioner.create({ slug, domains: ['crashed.test'], seed: true })
  t.same(await footprint(slug), { catalog: 'active', database: true, role: true })
  const served = await app.inject({ url: '/articles', headers: { host: 'crashed.test' } })
  t.equal(served.statusCode, 200)
  t.equal(served.json().items.length, 5)
})

t.test('a drop interrupted at any step is finished by the next drop', async (t) => {
  for (const step of ['drop-database', 'drop-role', 'drop-catalog'] as const) {
    const slug = `undrop-${step.slice(5)}`
    await silo.provisioner.create({ slug, domains: [`${slug}.test`] })
    await t.rejects(faultyProvisioner(silo, step).drop(slug), /injected fault/)
    t.equal((await footprint(slug)).catalog, 'dropping', `still known to the catalog after a fault at ${step}`)
    t.equal((await app.inject({ url: '/tenant', headers: { host: `${slug}.test` } })).statusCode, 503, 'and not served')
    await silo.provisioner.drop(slug)
    t.same(await footprint(slug), nothing, `second drop after ${step} removed everything`)
  }
})

t.test('create refuses taken slugs and domains, reserved hosts and foreign databases', async (t) => {
  await silo.provisioner.create({ slug: 'taken', domains: ['taken.test', 'alias.test'] })
  await t.rejects(silo.provisioner.create({ slug: 'taken', domains: ['other.test'] }), { code: 'SLUG_TAKEN', statusCode: 409 })
  await t.rejects(silo.provisioner.create({ slug: 'newcomer', domains: ['new.test', 'ALIAS.test.'] }), { code: 'DOMAIN_TAKEN', statusCode: 409, message: /alias\.test/ })
  t.same(await footprint('newcomer'), nothing, 'a domain conflict leaves nothing')
  await t.rejects(silo.provisioner.create({ slug: 'sneaky', domains: [silo.config.adminHost] }), { code: 'VALIDATION_FAILED' })
  // Made by someone else: no mark.
  await silo.admin.knex.raw('create role ?? nologin', [`${prefix}foreign`])
  t.teardown(async () => { await silo.admin.dropRoleUnchecked(`${prefix}foreign`) })
  await t.rejects(silo.provisioner.create({ slug: 'foreign', domains: ['foreign.test'] }), { code: 'SLUG_TAKEN', message: /outside this catalog/ })
  t.ok(await silo.admin.roleExists(`${prefix}foreign`), 'a role the catalog does not own is left alone')
  t.equal(await silo.catalog.tenantBySlug('foreign'), null)
})

t.test('two concurrent creates of one slug end with one tenant and one 409', async (t) => {
  const results = await Promise.allSettled([
    silo.provisioner.create({ slug: 'race', domains: ['race-a.test'] }),
    silo.provisioner.create({ slug: 'race', domains: ['race-b.test'] })
  ])
  const fulfilled = results.filter((r) => r.status === 'fulfilled')
  const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  t.equal(fulfilled.length, 1)
  t.equal(rejected.length, 1)
  t.equal(rejected[0]?.reason.statusCode, 409)
  t.same(await footprint('race'), { catalog: 'active', database: true, role: true })
})

t.test('domains can be added and removed, and routing follows at once', async (t) => {
  await silo.provisioner.create({ slug: 'movable', domains: ['movable.test'] })
  t.same((await app.inject({ url: '/tenant', headers: { host: 'movable.test' } })).json().domains, ['movable.test'], 'cached with one domain')
  t.equal((await app.inject({ url: '/tenant', headers: { host: 'moved.test' } })).statusCode, 404, 'unknown first (and negatively cached)')
  await silo.provisioner.addDomain('movable', 'Moved.Test')
  t.same((await app.inject({ url: '/tenant', headers: { host: 'movable.test' } })).json().domains, ['movable.test', 'moved.test'],
    'the cached record of an existing domain lists the new one at once')
  const moved = await app.inject({ url: '/tenant', headers: { host: 'moved.test' } })
  t.equal(moved.json().slug, 'movable', moved.body)
  await silo.provisioner.removeDomain('movable.test')
  t.equal((await app.inject({ url: '/tenant', headers: { host: 'movable.test' } })).statusCode, 404)
  t.same((await silo.catalog.listTenants(['movable']))[0]?.domains, ['moved.test'], 'the remaining domain became primary')
  t.same((await silo.catalog.listTenants(['movable']))[0]?.primaryDomain, 'moved.test')
  await t.rejects(silo.provisioner.removeDomain('nowhere.test'), { code: 'NOT_FOUND' })
})

t.test('a tenant cloned from the template owns every object in its database and is on the latest version', async (t) => {
  const cloned: string[] = []
  const fallbacks: string[] = []
  silo.events.on('tenant:created', ({ slug }) => { cloned.push(slug) })
  silo.events.on('template:unavailable', ({ slug }) => { fallbacks.push(slug) })
  await silo.provisioner.create({ slug: 'cloned', domains: ['cloned.test'] })
  t.same(fallbacks, [], 'the template was used')
  t.same(cloned, ['cloned'])
  const tenant = await silo.catalog.tenantBySlug('cloned')
  if (tenant === null) throw new Error('no tenant')
  t.equal(tenant.schemaVersion, await silo.migrator.latestVersion())
  const owners = await silo.migrator.withDatabase(tenant, async (db) => {
    const { rows } = await db.raw(`select distinct pg_get_userbyid(c.relowner) as owner from pg_class c
      join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'`)
    return rows.map((row: { owner: string }) => row.owner)
  })
  t.same(owners, [tenant.database.user], 'tables, sequences and indexes belong to the tenant role')
  const outcome = await silo.migrator.migrate(tenant)
  t.same(outcome.applied, [], 'knex sees the cloned migrations as applied')
  const res = await app.inject({ method: 'POST', url: '/articles', headers: { host: 'cloned.test' }, payload: { title: 'works', body: '' } })
  t.equal(res.statusCode, 201)
  const templateRole = silo.template?.roleName ?? ''
  const { rows } = await silo.admin.knex.raw('select count(*)::int as n from pg_auth_members m join pg_roles r on r.oid = m.roleid where r.rolname = ?', [templateRole])
  t.equal(rows[0].n <= 1, true, 'no tenant role is a member of the template role')
})

t.test('with the template off, a tenant is migrated from an empty database', async (t) => {
  const { silo: plain, app: plainApp } = await testApp(t, { TENANT_TEMPLATE: 'off' })
  t.equal(plain.template, undefined)
  await plain.provisioner.create({ slug: 'plain', domains: ['plain.test'], seed: true })
  t.equal((await plain.catalog.tenantBySlug('plain'))?.schemaVersion, await plain.migrator.latestVersion())
  t.equal((await plainApp.inject({ url: '/articles', headers: { host: 'plain.test' } })).json().items.length, 5)
})
