import t from './helpers/tap.js'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { migrateFleet } from '../src/lifecycle/fleet-migrator.js'
import { openSilo } from '../src/silo.js'
import { runCli, spawnCli } from './helpers/cli.js'
import { anotherInstance, closeInTeardown, createTenant, testEnv } from './helpers/silo.js'
import { eventually } from './helpers/wait.js'

/*
 * Migrations from the admin API: one tenant at once, and the fleet as a run (POST /migrations,
 * GET /migrations/:id) that the CLI's `migrate --all` shares: one at a time in the deployment,
 * recorded in the catalog, read back the same whoever started it.
 */

const token = 'admin-token-for-migrations-0123'
const env = testEnv({ ADMIN_TOKEN: token, MIGRATE_CONCURRENCY: 1 })
const config = loadConfig(env, { env: false, dotenv: false })
const opened = closeInTeardown(t, config)
const silo = opened.silo = await openSilo(config)
const app = opened.app = await buildApp(silo, { config })
const latest = await silo.migrator.latestVersion()
const slugs = ['mg-a', 'mg-b', 'mg-c']
for (const slug of slugs) await createTenant(silo, slug)

const admin = { host: 'admin.localhost', authorization: `Bearer ${token}` }
const call = async (method: 'GET' | 'POST', url: string, headers: Record<string, string> = admin) => await app.inject({ method, url, headers })
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

const record = async (slug: string) => {
  const tenant = await silo.catalog.tenantBySlug(slug)
  if (tenant === null) throw new Error(`no tenant ${slug}`)
  return tenant
}
const rollBack = async (slug: string): Promise<void> => {
  const [result] = await migrateFleet(silo.catalog, silo.migrator, [slug], { direction: 'rollback', concurrency: 1 })
  if (result?.after !== null) throw new Error(`${slug} was not rolled back`)
}
/** A table in the way of the tenant migration: the tenant's next migration fails. */
const sabotage = async (slug: string, on: boolean): Promise<void> => {
  await silo.migrator.withDatabase(await record(slug), async (db) => { await db.raw(on ? 'create table articles (id int)' : 'drop table articles') })
}

/**
 * Holds the row of the tenant's knex_migrations_lock from a session of its own: a migration of
 * that tenant waits for it (knex locks that row first, whether or not there is work). Returns
 * the release.
 */
const hold = async (slug: string): Promise<() => Promise<void>> => {
  let release = (): void => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  let holding = (): void => {}
  const held = new Promise<void>((resolve) => { holding = resolve })
  const done = silo.migrator.withDatabase(await record(slug), async (db) => {
    await db.transaction(async (trx) => {
      await trx.raw('select * from knex_migrations_lock for update')
      holding()
      await released
    })
  })
  t.teardown(release)
  await held
  return async () => { release(); await done }
}

/** Sessions migrating the tenant that wait for a lock (the hold). */
const waitingMigrations = async (slug: string): Promise<number> => {
  const { rows } = await silo.catalog.knex.raw<{ rows: Array<{ n: number }> }>(
    'select count(*)::int as n from pg_stat_activity where application_name = ? and wait_event_type = \'Lock\'', [`silo-migrate:${slug}`])
  return rows[0]?.n ?? 0
}

type Run = { id: string, status: string, origin: string, progress: { total: number, done: number, failed: number }, summary: Record<string, unknown> | null, error: string | null, finishedAt: string | null, results: Array<{ slug: string, status: string }> }
const run = async (id: string, query = ''): Promise<Run> => (await call('GET', `/migrations/${id}${query}`)).json()

t.test('POST /tenants/:slug/migrate migrates that tenant now and answers its outcome, as the CLI records it', async (t) => {
  await rollBack('mg-a')
  const first = await call('POST', '/tenants/mg-a/migrate')
  t.equal(first.statusCode, 200)
  t.match(first.json(), { slug: 'mg-a', direction: 'latest', status: 'migrated', before: null, after: latest, applied: [latest], error: null, runId: uuid, finishedAt: String })
  t.equal((await record('mg-a')).schemaVersion, latest, 'the catalog has its new version')
  const again = await call('POST', '/tenants/mg-a/migrate')
  t.match(again.json(), { status: 'up-to-date', before: latest, after: latest, applied: [] })

  const history = (await call('GET', '/tenants/mg-a/migrations')).json() as { items: Array<{ runId: string, status: string, direction: string }> }
  t.same(history.items.slice(0, 3).map((item) => [item.direction, item.status]), [['latest', 'up-to-date'], ['latest', 'migrated'], ['rollback', 'migrated']], 'newest first, the rollback included')
  t.equal(history.items[0]?.runId, again.json().runId)
})

t.test('a migration that fails is an outcome: 200, status failed, its error, the tenant left on its version', async (t) => {
  await rollBack('mg-b')
  await sabotage('mg-b', true)
  const res = await call('POST', '/tenants/mg-b/migrate')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { slug: 'mg-b', status: 'failed', before: null, after: null, applied: [], error: /articles/ })
  t.equal((await record('mg-b')).schemaVersion, null)
  t.match((await call('GET', '/tenants/mg-b/migrations')).json().items[0], { status: 'failed', error: /articles/ })
})

t.test('one tenant: unknown is 404 TENANT_NOT_FOUND, malformed 400 VALIDATION_FAILED, no token 401', async (t) => {
  const code = (res: { statusCode: number, json: () => { code: string } }): [number, string] => [res.statusCode, res.json().code]
  t.same(code(await call('POST', '/tenants/nobody/migrate')), [404, 'TENANT_NOT_FOUND'])
  t.same(code(await call('GET', '/tenants/nobody/migrations')), [404, 'TENANT_NOT_FOUND'])
  t.same(code(await call('POST', '/tenants/Not_A_Slug/migrate')), [400, 'VALIDATION_FAILED'])
  t.same(code(await call('POST', '/tenants/mg-a/migrate', { host: 'admin.localhost' })), [401, 'UNAUTHORIZED'])
  t.same(code(await call('POST', '/migrations', { host: 'admin.localhost' })), [401, 'UNAUTHORIZED'])
  t.same(code(await call('GET', '/migrations/not-a-run')), [400, 'VALIDATION_FAILED'])
  t.same(code(await call('GET', '/migrations/00000000-0000-4000-8000-000000000000')), [404, 'NOT_FOUND'])
  t.same(code(await call('GET', '/migrations?limit=0')), [400, 'VALIDATION_FAILED'])
  t.same(code(await call('GET', '/migrations/00000000-0000-4000-8000-000000000000?limit=5000')), [400, 'VALIDATION_FAILED'])
})

t.test('POST /migrations answers 202 and its Location at once; one runs at a time (409, the CLI too); its progress, then its summary, failures first', async (t) => {
  await rollBack('mg-a')
  // One tenant at a time in slug order: mg-a migrates, mg-b fails, mg-c waits for the hold.
  const release = await hold('mg-c')
  const started = await call('POST', '/migrations')
  t.equal(started.statusCode, 202)
  const id = started.json().id as string
  t.match(id, uuid)
  t.equal(started.headers.location, `/migrations/${id}`)
  t.match(started.json(), { status: 'running', origin: 'api', direction: 'latest', concurrency: 1, progress: { total: 3 }, summary: null, finishedAt: null })

  t.ok(await eventually(async () => (await run(id)).progress.done === 2), 'two tenants have a result while the third waits')
  const running = await run(id)
  t.match(running, { status: 'running', progress: { total: 3, done: 2, failed: 1 }, summary: null })
  t.same(running.results.map((result) => [result.slug, result.status]), [['mg-b', 'failed'], ['mg-a', 'migrated']], 'failures first')

  const second = await call('POST', '/migrations')
  t.equal(second.statusCode, 409)
  t.equal(second.json().code, 'MIGRATION_RUNNING')
  t.equal(second.headers.location, `/migrations/${id}`, 'the running one is named')
  const cli = await runCli(['migrate', '--all'], env)
  t.equal(cli.code, 1, 'the CLI is refused too')
  t.match(cli.stderr, new RegExp(`fleet migration is running \\(${id}\\)`))
  t.match((await call('GET', '/migrations')).json().items[0], { id, status: 'running' })

  await release()
  t.ok(await eventually(async () => (await run(id)).status !== 'running'), 'it ends once the hold is gone')
  const ended = await run(id)
  t.match(ended, {
    status: 'failed',
    error: null,
    finishedAt: String,
    progress: { total: 3, done: 3, failed: 1 },
    summary: { tenants: 3, migrated: 1, upToDate: 1, skipped: 0, failed: 1, durationMs: Number }
  })
  t.same(ended.results.map((result) => [result.slug, result.status]), [['mg-b', 'failed'], ['mg-c', 'up-to-date'], ['mg-a', 'migrated']])
  t.same((await run(id, '?limit=1')).results.map((result) => result.slug), ['mg-b'], 'limit bounds the results, failures kept first')
})

t.test('the CLI\'s fleet migration is a run the admin API lists; one whose process is killed reads as failed, interrupted', async (t) => {
  await sabotage('mg-b', false)
  const cli = await runCli(['migrate', '--all'], env)
  t.equal(cli.code, 0, cli.stderr)
  const listed = (await call('GET', '/migrations')).json().items as Run[]
  t.match(listed[0], { origin: 'cli', status: 'done', progress: { total: 3, done: 3, failed: 0 }, summary: { migrated: 1, upToDate: 2, failed: 0 } })
  t.equal(listed.length, 2, 'newest first: the CLI\'s, then the API\'s')

  const release = await hold('mg-a')
  const child = spawnCli(['migrate', '--all'], env)
  const exited = new Promise((resolve) => { child.on('exit', resolve) })
  let id = ''
  t.ok(await eventually(async () => {
    const [newest] = (await call('GET', '/migrations')).json().items as Run[]
    if (newest?.origin !== 'cli' || newest.status !== 'running') return false
    id = newest.id
    return true
  }), 'the CLI\'s run is seen running')
  child.kill('SIGKILL')
  await exited
  t.ok(await eventually(async () => (await run(id)).status === 'failed', 10000), 'its sessions gone, it reads as failed')
  t.match(await run(id), { status: 'failed', error: /interrupted/, finishedAt: null, summary: { tenants: 0 } })
  await release()

  const next = await call('POST', '/migrations')
  t.equal(next.statusCode, 202, 'a run that was killed does not block the next')
  t.ok(await eventually(async () => (await run(next.json().id)).status === 'done'))
  t.match(await run(id), { status: 'failed', error: /interrupted/, finishedAt: String }, 'the next run closed it')
})

t.test('closing an instance stops its fleet migration between tenants and records where it stopped', async (t) => {
  const other = await anotherInstance(t, config)
  const release = await hold('mg-a')
  const { run: started, done } = await other.silo.fleetMigrations.start({ concurrency: 1, origin: 'api' })
  t.ok(await eventually(async () => await waitingMigrations('mg-a') === 1), 'mg-a\'s migration is under way, waiting for the hold')
  const closed = other.silo.fleetMigrations.close()
  await release()
  await closed
  const end = await done
  t.equal(end.results.length, 1, 'the tenant under way finished; no other was started')
  t.match(await run(started.id), { status: 'failed', error: 'stopped: the instance shut down after 1 of 3 tenants', progress: { total: 3, done: 1 }, finishedAt: String })
  t.match(await other.silo.fleetMigrations.start({ concurrency: 1, origin: 'api' }).catch((error: Error & { code?: string }) => error.code), 'SHUTTING_DOWN', 'and starts no other')
})
