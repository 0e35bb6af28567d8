// What stops a move: every refusal (nothing made), a fault at each step (everything undone, the
// tenant served from its source, a retry succeeds; after the switch, the move stands), and a long
// transaction on the source (test/move-kills.test.ts kills movers). Two real servers:
// DATABASE_URL's (`default`) and an embedded one of this file's own (`second`).
import t from './helpers/tap.js'
import pg from 'pg'
import { TenantMover, type MoveStep } from '../src/lifecycle/tenant-mover.js'
import { diagnose, isHealthy, planRepair, repair } from '../src/lifecycle/doctor.js'
import { moveProbes, sql } from './helpers/moves.js'
import { secondServer } from './helpers/servers.js'
import { testApp } from './helpers/silo.js'

const HOLD_MS = 1500
const { silo, app } = await testApp(t, { MOVE_HOLD_MS: HOLD_MS })
const second = await secondServer(t)
await silo.serverRegistry.add({ name: 'second', url: second.url })
const prefix = silo.config.tenantDbPrefix

const { defaultUrl, doctorDeps, exists, captureLeft, articleCount, serverOf, createOnDefault, served } = moveProbes(silo, app)

t.test('every refusal says why and makes nothing', async (t) => {
  await createOnDefault('stays')
  const name = `${prefix}stays`
  const refusals: Array<[string, () => Promise<unknown>, string]> = [
    ['unknown tenant', async () => await silo.mover.move('nobody', { to: 'second' }), 'TENANT_NOT_FOUND'],
    ['unknown server', async () => await silo.mover.move('stays', { to: 'nowhere' }), 'SERVER_NOT_FOUND'],
    ['the server it is on', async () => await silo.mover.move('stays', { to: 'default' }), 'MOVE_REFUSED']
  ]
  for (const [why, attempt, code] of refusals) await t.rejects(attempt(), { code }, why)
  for (const status of ['draining', 'disabled'] as const) {
    await silo.catalog.knex('servers').where({ name: 'second' }).update({ status })
    await t.rejects(silo.mover.move('stays', { to: 'second' }), { code: 'SERVER_NOT_ACCEPTING', message: new RegExp(`it is ${status}`) }, `a ${status} server`)
  }
  await silo.catalog.knex('servers').where({ name: 'second' }).update({ status: 'active' })
  await silo.provisioner.create({ slug: 'filler', domains: ['filler.test'], server: 'second' })
  await silo.catalog.knex('servers').where({ name: 'second' }).update({ max_tenants: 1 })
  await t.rejects(silo.mover.move('stays', { to: 'second' }), { code: 'SERVER_NOT_ACCEPTING', message: /full/ }, 'a full server')
  await silo.catalog.knex('servers').where({ name: 'second' }).update({ max_tenants: null })
  await silo.provisioner.drop('filler')
  await second.stop()
  try {
    await t.rejects(silo.mover.move('stays', { to: 'second' }), { code: 'SERVER_UNAVAILABLE' }, 'a server that does not answer')
  } finally {
    await second.start()
  }
  await silo.provisioner.setStatus('stays', 'suspended')
  await t.rejects(silo.mover.move('stays', { to: 'second' }), { code: 'TENANT_STATE_CONFLICT' }, 'a suspended tenant')
  await silo.provisioner.setStatus('stays', 'active')
  await silo.catalog.setStatus('stays', 'provisioning')
  await t.rejects(silo.mover.move('stays', { to: 'second' }), { code: 'TENANT_STATE_CONFLICT' }, 'a half-made tenant')
  await silo.catalog.setStatus('stays', 'active')
  const version = (await silo.catalog.tenantBySlug('stays'))?.schemaVersion ?? null
  await silo.catalog.setSchemaVersion('stays', '20200101000000_older')
  await t.rejects(silo.mover.move('stays', { to: 'second' }), { code: 'MOVE_REFUSED', message: /migrate it first/ }, 'a tenant behind the newest schema')
  await silo.catalog.setSchemaVersion('stays', version)
  await sql(second.url, 'postgres', `create database ${name}`)
  await t.rejects(silo.mover.move('stays', { to: 'second' }), { code: 'MOVE_REFUSED', message: /holds a database or role named/ }, 'a target holding a database of its name')
  await sql(second.url, 'postgres', `drop database ${name}`)
  // Another process's operation on the tenant: its catalog lock, held on a session of its own.
  const holder = new pg.Client({ connectionString: new URL(`/${silo.config.catalogDatabase}`, defaultUrl).toString() })
  await holder.connect()
  await holder.query('select pg_advisory_lock(hashtextextended($1, 0))', ['silo:tenant:stays'])
  await t.rejects(silo.mover.move('stays', { to: 'second' }), { code: 'TENANT_LOCKED' }, 'another operation on the tenant')
  await holder.end()
  const attachedDb = `${prefix}own`
  await sql(defaultUrl, 'postgres', `create role ${attachedDb} login password 'own-password-123'`)
  await sql(defaultUrl, 'postgres', `create database ${attachedDb} owner ${attachedDb}`)
  t.teardown(async () => {
    await sql(defaultUrl, 'postgres', `drop database if exists ${attachedDb} with (force)`)
    await sql(defaultUrl, 'postgres', `drop role if exists ${attachedDb}`)
  })
  const url = new URL(defaultUrl)
  url.username = attachedDb
  url.password = 'own-password-123'
  url.pathname = `/${attachedDb}`
  await silo.attacher.attach({ slug: 'attached', url: url.toString(), domains: ['attached.test'] })
  await t.rejects(silo.mover.move('attached', { to: 'second' }), { code: 'MOVE_REFUSED', message: /attached/ }, 'an attached tenant')
  await silo.provisioner.drop('attached')

  t.same(await exists(second.url, name), { database: false, role: false }, 'nothing was made on the target')
  t.same(await silo.catalog.moves.ofTenant('stays'), [], 'no move was recorded')
  t.equal(await serverOf('stays'), 'default')
  t.equal(await served('stays.test'), 200, 'and it serves as before')
})

t.test('a fault at any step before the switch undoes the move: served from its source, nothing left; a retry moves it', async (t) => {
  const steps: MoveStep[] = ['target', 'capture', 'copy', 'catch-up', 'freeze', 'switch']
  for (const step of steps) {
    const slug = `fault-${step}`
    await createOnDefault(slug)
    const name = `${prefix}${slug.replaceAll('-', '_')}`
    const faulty = new TenantMover({
      catalog: silo.catalog,
      servers: silo.servers,
      migrator: silo.migrator,
      holdMs: HOLD_MS,
      resolver: silo.resolver,
      pools: silo.pools,
      beforeStep: (at) => { if (at === step) throw new Error(`injected fault before ${at}`) }
    })
    await t.rejects(faulty.move(slug, { to: 'second' }), { code: 'MOVE_FAILED', message: /served from default as before/ }, `fails at ${step}`)
    t.equal(await serverOf(slug), 'default', `${step}: still on its source`)
    t.equal(await served(`${slug}.test`), 200, `${step}: and served (no freeze left)`)
    t.same(await exists(second.url, name), { database: false, role: false }, `${step}: the half-made copy is gone`)
    t.equal(await captureLeft(name), 0, `${step}: the change capture is removed`)
    t.match((await silo.catalog.moves.ofTenant(slug))[0], { phase: 'failed', error: /injected fault/ }, `${step}: the move is recorded failed`)
    t.ok(isHealthy(await diagnose(doctorDeps)), `${step}: doctor finds nothing`)
    const moved = await silo.mover.move(slug, { to: 'second' })
    t.equal(moved.phase, 'done', `${step}: a retry moves it`)
    t.equal(await articleCount(slug), 5, `${step}: with its rows`)
    await silo.provisioner.drop(slug)
  }
})

t.test('a long transaction on the source does not hold the tenant\'s writes behind the move: the capture gives up after MOVE_HOLD_MS and nothing is left', async (t) => {
  await createOnDefault('busy')
  const name = `${prefix}busy`
  const writer = new pg.Client({ connectionString: new URL(`/${name}`, defaultUrl).toString() })
  await writer.connect()
  await writer.query('begin')
  await writer.query("insert into articles (title, body) values ('a long transaction', 'open')")
  await t.rejects(silo.mover.move('busy', { to: 'second' }), { code: 'MOVE_FAILED', message: /lock timeout/ }, 'the move fails instead of waiting')
  await writer.query('commit')
  await writer.end()
  t.equal(await serverOf('busy'), 'default')
  t.same(await exists(second.url, name), { database: false, role: false }, 'its half-made copy is gone')
  t.equal(await captureLeft(name), 0, 'no capture is left')
  t.equal(await articleCount('busy'), 6, 'the long transaction committed on the source')
  t.equal((await silo.mover.move('busy', { to: 'second' })).phase, 'done', 'once it ended, the move goes through')
  t.equal(await articleCount('busy'), 6)
})

t.test('a fault after the switch leaves the tenant moved; doctor drops the source it left', async (t) => {
  await createOnDefault('late')
  const faulty = new TenantMover({
    catalog: silo.catalog,
    servers: silo.servers,
    migrator: silo.migrator,
    holdMs: HOLD_MS,
    resolver: silo.resolver,
    pools: silo.pools,
    beforeStep: (at) => { if (at === 'drop-source') throw new Error('injected fault before drop-source') }
  })
  const move = await faulty.move('late', { to: 'second' })
  t.match(move, { phase: 'done', error: /source database was not removed/ })
  t.equal(await serverOf('late'), 'second')
  t.equal(await served('late.test'), 200)
  const report = await diagnose(doctorDeps)
  t.ok(report.orphanDatabases.includes(`${prefix}late`), 'the source left behind is an orphan on default')
  await repair(doctorDeps, planRepair(report), { confirmed: true })
  t.same(await exists(defaultUrl, `${prefix}late`), { database: false, role: false }, 'doctor --fix --yes drops it')
  t.equal(await articleCount('late'), 5, 'the tenant keeps its rows on second')
  await silo.provisioner.drop('late')
})
