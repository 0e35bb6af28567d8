import { spawn } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from './helpers/tap.js'
import { loadConfig } from '../src/config.js'
import { openSilo } from '../src/silo.js'
import { tenantConnection } from '../src/catalog/tenant-connection.js'
import knex from 'knex'
import { knexConfig, tenantMigrations, type PgConnection } from '../src/db/knex-config.js'
import { tenantMigrationsDir } from '../src/db/paths.js'
import { DirectoryMigrationSource } from '../src/db/migration-source.js'
import { TenantMigrator } from '../src/lifecycle/tenant-migrator.js'
import type { TenantRecord } from '../src/catalog/catalog-store.js'
import { runCli } from './helpers/cli.js'
import { childEnv, root } from './helpers/compiled.js'
import { createTenant, dropTestDatabases, testEnv } from './helpers/silo.js'
import { eventually } from './helpers/wait.js'

// Knex marks its migration lock in a table. When every pending migration runs in a transaction, it
// does so inside the batch's transaction (a kill rolls it back, a second migrator waits on the row).
// A batch with a migration outside a transaction (`config.transaction = false`, as CREATE INDEX
// CONCURRENTLY needs) sets it in a transaction of its own and clears it at the end: a migrator
// killed in between left every later migration of that tenant failing with "Migration table is
// already locked", and a second migration of the tenant meanwhile failed the same way. Silo's
// migrations of a database now take an advisory lock there first (src/lifecycle/migration-lock.ts).

const env = testEnv()
const config = loadConfig(env, { env: false, dotenv: false })
t.teardown(async () => { await dropTestDatabases(config) })
const silo = await openSilo(config, { listen: false })
t.teardown(async () => { await silo.close() })

// The shipped migrations and one more that runs outside a transaction and takes a while.
const dir = await mkdtemp(join(tmpdir(), 'silo-migration-lock-'))
t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
const migrationsDir = join(dir, 'migrations')
await mkdir(migrationsDir)
await writeFile(join(migrationsDir, 'package.json'), '{ "type": "module" }\n')
for (const name of await readdir(tenantMigrationsDir)) {
  if (name.endsWith('.js')) await copyFile(new URL(name, tenantMigrationsDir), join(migrationsDir, name))
}
const EXTRA = '20991231000001_index_concurrently'
await writeFile(join(migrationsDir, `${EXTRA}.js`), `
export const config = { transaction: false }
export async function up (knex) {
  const { rows } = await knex.raw("select coalesce(current_setting('silo_test.sleep', true), '0.5') as s")
  await knex.raw('select pg_sleep(?)', [Number(rows[0].s)])
  await knex.raw('create index concurrently articles_title on articles (title)')
}
export async function down (knex) {
  await knex.raw('drop index concurrently articles_title')
}
`)
const newer = new TenantMigrator(new DirectoryMigrationSource(pathToFileURL(`${migrationsDir}/`)))

const record = async (slug: string): Promise<TenantRecord> => {
  const tenant = await silo.catalog.tenantBySlug(slug)
  if (tenant === null) throw new Error(`no tenant ${slug}`)
  return tenant
}
const knexLock = async (slug: string): Promise<number> => await silo.migrator.withDatabase(await record(slug), async (db) => {
  return Number((await db('knex_migrations_lock').first<{ is_locked: number }>('is_locked'))?.is_locked)
})
const applied = async (slug: string): Promise<string[]> => await silo.migrator.withDatabase(await record(slug), async (db) => {
  return await db('knex_migrations').orderBy('id').pluck('name') as string[]
})
/** Sessions of the database running its slow migration's sleep. */
const sleeping = async (database: string): Promise<number[]> => {
  const { rows } = await silo.catalog.knex.raw<{ rows: Array<{ pid: number }> }>(
    'select pid from pg_stat_activity where datname = ? and query like \'select pg_sleep%\' and state = \'active\'', [database])
  return rows.map((row) => row.pid)
}

/**
 * A knex migrator (an older Silo, or knex run by hand) in a process of its own, on the tenant's
 * database (or on `on`, a connection and the role its migration runs as), running the slow
 * migration with a sleep of `sleepS`: killed with SIGKILL once it sleeps. Its backend goes on with
 * the statement it was given (PostgreSQL notices the closed socket only when it next writes to
 * it). Returns that backend's pid.
 */
const killMidMigration = async (tenant: TenantRecord | { connection: PgConnection, role: string }, sleepS: number): Promise<number> => {
  const connection = 'connection' in tenant ? tenant.connection : tenantConnection(tenant, `silo-migrate:${tenant.slug}`)
  const setRole = 'role' in tenant ? `; set role "${tenant.role}"` : ''
  const script = join(dir, 'migrate.mjs')
  await writeFile(script, `
import knex from ${JSON.stringify(pathToFileURL(join(root, 'node_modules/knex/knex.js')).href)}
import { DirectoryMigrationSource } from ${JSON.stringify(pathToFileURL(join(root, 'dist/src/db/migration-source.js')).href)}
const db = knex({
  client: 'pg',
  connection: JSON.parse(process.env.TENANT_CONNECTION),
  pool: { min: 0, max: 1, afterCreate: (c, done) => { c.query('set silo_test.sleep = ${sleepS}${setRole}', (e) => done(e, c)) } },
  migrations: { migrationSource: new DirectoryMigrationSource(new URL(${JSON.stringify(pathToFileURL(`${migrationsDir}/`).href)})) }
})
await db.migrate.latest()
`)
  const child = spawn(process.execPath, [script], {
    env: childEnv({ TENANT_CONNECTION: JSON.stringify(connection) }),
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise((resolve) => { child.on('close', resolve) })
  let pids: number[] = []
  if (!(await eventually(async () => (pids = await sleeping(connection.database)).length === 1, 20000, 20))) throw new Error(`the migrator never got to its migration: ${stderr}`)
  child.kill('SIGKILL')
  await exited
  return pids[0] ?? 0
}
/**
 * Waits until no session is connected to the tenant's database: a session a helper above closed
 * can stay in pg_stat_activity for a moment while its backend exits, and a migration that finds
 * one there keeps knex's lock, as it should for a session that could be migrating.
 */
const quiet = async (tenant: TenantRecord | string): Promise<void> => {
  const database = typeof tenant === 'string' ? tenant : tenant.database.name
  const gone = await eventually(async () => (await silo.catalog.knex.raw<{ rows: unknown[] }>('select 1 from pg_stat_activity where datname = ?', [database])).rows.length === 0, 10000, 20)
  if (!gone) throw new Error(`sessions stayed on ${database}`)
}
const terminate = async (pid: number): Promise<void> => {
  await silo.catalog.knex.raw('select pg_terminate_backend(?)', [pid])
  await eventually(async () => (await silo.catalog.knex.raw<{ rows: unknown[] }>('select 1 from pg_stat_activity where pid = ?', [pid])).rows.length === 0, 10000, 20)
}

t.test('a migrator killed mid-migration: its lock holds while its backend still runs, then the next migration clears it and completes', async (t) => {
  await createTenant(silo, 'killed')
  const tenant = await record('killed')
  const orphan = await killMidMigration(tenant, 60)
  t.equal(await knexLock('killed'), 1, 'the kill left knex lock set')

  await t.rejects(newer.migrate(tenant), /already locked/, 'refused while the killed run\'s statement still runs, as knex says')
  t.equal(await knexLock('killed'), 1, 'the lock is left as it was')
  t.equal((await applied('killed')).includes(EXTRA), false, 'nothing migrated')

  // Its statement ends (an operator ends it here, rather than wait a minute): the next migration goes ahead.
  await terminate(orphan)
  await quiet(tenant)
  const outcome = await newer.migrate(tenant)
  t.same(outcome.applied, [EXTRA], 'the pending migration ran')
  t.equal(await knexLock('killed'), 0, 'and the lock is clear after it')

  const back = await newer.rollback(tenant)
  t.same(back.applied, [EXTRA], 'a rollback works too')
})

t.test('the shipped CLI migrates a tenant whose knex lock a killed run left set', async (t) => {
  await createTenant(silo, 'cli-left')
  const tenant = await record('cli-left')
  // Killed after it set the lock, and its statement ended: the state every later run met.
  await terminate(await killMidMigration(tenant, 60))
  t.equal(await knexLock('cli-left'), 1, 'the kill left knex lock set')
  // The killed run applied nothing the shipped code does not know: it died before its migration recorded itself.
  t.equal((await applied('cli-left')).includes(EXTRA), false)
  await quiet(tenant)
  const one = await runCli(['migrate', 'cli-left'], env)
  t.equal(one.code, 0, one.stderr)
  t.equal(await knexLock('cli-left'), 0)
})

t.test('two migrations of one tenant at once: the second waits for the first, both succeed, the migration runs once', async (t) => {
  await createTenant(silo, 'twice')
  const tenant = await record('twice')
  const first = newer.migrate(tenant)
  // The first is inside its slow migration, knex lock set, before the second starts.
  await eventually(async () => (await sleeping(tenant.database.name)).length === 1, 10000, 10)
  const second = newer.migrate(tenant)
  const outcomes = await Promise.allSettled([first, second])
  t.same(outcomes.map((outcome) => outcome.status), ['fulfilled', 'fulfilled'], 'neither failed on the lock')
  t.same(outcomes.map((outcome) => outcome.status === 'fulfilled' ? outcome.value.applied : outcome.reason), [[EXTRA], []], 'the first applied it, the second found nothing to do')
  t.same((await applied('twice')).filter((name) => name === EXTRA), [EXTRA], 'recorded once')
  t.equal(await knexLock('twice'), 0)
})

t.test('a template refresh killed mid-migration: the next refresh clears knex lock, and creates clone from the template again', async (t) => {
  const { admin, connection, ownership, template } = silo.servers.default
  if (template === undefined) throw new Error('the tests run with TENANT_TEMPLATE=on')
  await template.ready()
  const database = template.databaseName
  /** knex's lock in the template, read over a connection of its own (the template refuses them between refreshes). */
  const templateLock = async (): Promise<number> => {
    await admin.setAllowConnections(database, true)
    const db = knex(knexConfig({ connection: { ...connection, database }, pool: { min: 0, max: 1 } }))
    try {
      return Number((await db('knex_migrations_lock').first<{ is_locked: number }>('is_locked'))?.is_locked)
    } finally {
      await db.destroy()
      await admin.setAllowConnections(database, false)
    }
  }

  // A refresh (as the template's role, as Silo's runs) killed in a migration outside a transaction, its statement since ended.
  await admin.setAllowConnections(database, true)
  await terminate(await killMidMigration({ connection: { ...connection, database, application_name: 'silo-template' }, role: template.roleName }, 60))
  await admin.setAllowConnections(database, false)
  t.equal(await templateLock(), 1, 'the kill left knex lock set in the template')

  // The next refresh (a newer Silo's migrations; here the template's mark made stale) clears it and completes.
  await admin.setDatabaseComment(database, ownership.mark('template', 'stale'))
  template.reset()
  await quiet(database)
  t.equal(await template.ready(), await tenantMigrations.latestName(), 'the refresh completed')
  await quiet(database)
  t.equal(await templateLock(), 0, 'and knex lock is clear')

  const sources: string[] = []
  const count = ({ source }: { source: string }): void => { sources.push(source) }
  silo.events.on('tenant:created', count)
  t.teardown(() => { silo.events.off('tenant:created', count) })
  await quiet(database)
  await createTenant(silo, 'after-template')
  t.same(sources, ['template'], 'a create clones from the template again, not from migrations')
})
