import { writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from './helpers/tap.js'
import { loadConfig } from '../src/config.js'
import { openSilo } from '../src/silo.js'
import { templateDatabaseName } from '../src/lifecycle/tenant-template.js'
import { runCli, spawnCli } from './helpers/cli.js'
import { dropTestDatabases, tenantFootprint, testEnv } from './helpers/silo.js'
import { eventually } from './helpers/wait.js'

const env = testEnv()
const config = loadConfig(env, { env: false, dotenv: false })
t.teardown(async () => { await dropTestDatabases(config) })
const silo = await openSilo(config)
t.teardown(async () => { await silo.close() })
const cli = async (...args: string[]) => await runCli(args, env)
const prefix = config.tenantDbPrefix

const footprint = async (slug: string) => await tenantFootprint(silo, slug)

await silo.provisioner.create({ slug: 'acme', domains: ['acme.test'] })
await silo.provisioner.create({ slug: 'globex', domains: ['globex.test'] })

t.test("run executes SQL in one tenant's database only, as its role", async (t) => {
  const insert = await cli('run', 'acme', '--', "insert into articles (title, body) values ('via run', 'x')")
  t.equal(insert.code, 0, insert.stderr)
  t.match(insert.stdout, /INSERT 1/)
  const who = await cli('run', 'acme', '--json', '--', "select current_user as u, current_database() as d, '{\"a\":1}'::jsonb ? 'a' as has")
  t.same(JSON.parse(who.stdout).rows, [{ u: `${prefix}acme`, d: `${prefix}acme`, has: true }], 'SQL with ? reaches the server untouched')
  const dir = await mkdtemp(join(tmpdir(), 'silo-run-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, 'q.sql'), "select count(*)::int as n from articles where title = 'via run';\nselect 1 as one;")
  const fromFile = await cli('run', 'globex', '--file', join(dir, 'q.sql'), '--json')
  t.equal(fromFile.code, 0, fromFile.stderr)
  t.same(fromFile.stdout.trim().split('\n').map((line) => JSON.parse(line).rows[0]), [{ n: 0 }, { one: 1 }], "globex does not see acme's row")
  const denied = await cli('run', 'globex', '--', `select * from pg_database where datname = '${prefix}acme'`)
  t.equal(denied.code, 0, 'catalog tables are readable, but no data of another tenant is')
  const failing = await cli('run', 'acme', '--', 'select * from no_such_table')
  t.equal(failing.code, 1)
  t.match(failing.stderr, /^tenants: .*no_such_table/)
  t.equal((await cli('run', 'nobody', '--', 'select 1')).code, 1)
  t.not((await cli('run', 'acme')).code, 0, 'no SQL is a usage error')
})

t.test('doctor finds orphans, missing databases and half-made tenants; --fix repairs at once and drops only with --yes', async (t) => {
  const mark = silo.ownership.mark('tenant')
  // What a create whose catalog row was lost leaves: objects with this catalog's mark it does not know.
  await silo.admin.ensurePrivateDatabase(`${prefix}orphan`, mark)
  await silo.admin.ensureRole(`${prefix}lost`, 'some-password', mark)
  // Somebody else's database, named with the prefix but without a mark.
  await silo.admin.knex.raw('create database ??', [`${prefix}stranger`])
  await silo.provisioner.create({ slug: 'vanished', domains: ['vanished.test'] })
  await silo.admin.dropDatabaseUnchecked(`${prefix}vanished`)
  await silo.catalog.insertTenant({ slug: 'halfway', name: 'halfway', databaseName: `${prefix}halfway`, databaseUser: `${prefix}halfway`, password: 'pw-left-behind', domains: ['halfway.test'] })
  await silo.admin.ensureRole(`${prefix}halfway`, 'pw-left-behind', mark)

  const sick = await cli('doctor', '--json')
  t.equal(sick.code, 1, 'problems found: exit 1')
  const diagnosed = JSON.parse(sick.stdout)
  t.match(diagnosed, {
    healthy: false,
    report: { orphanDatabases: [`${prefix}orphan`], orphanRoles: [`${prefix}lost`], missingDatabases: ['halfway', 'vanished'], stuck: [{ slug: 'halfway', status: 'provisioning' }] },
    plan: { repair: { tenants: [{ slug: 'halfway' }] }, drop: { databases: [`${prefix}orphan`], roles: [`${prefix}lost`], tenants: ['vanished'] } }
  })
  t.match(diagnosed.report.notOurs, [{ type: 'database', name: `${prefix}stranger`, reason: /no Silo mark/ }], 'an unmarked database with the prefix is not ours')

  const unconfirmed = await cli('doctor', '--fix')
  t.equal(unconfirmed.code, 1, 'drops wait for --yes: exit 1')
  t.match(unconfirmed.stdout, /removed or dropped: tenant halfway/, 'the half-made tenant is repaired at once')
  t.match(unconfirmed.stdout, new RegExp(`will drop, with --yes: tenant vanished \\(its database is missing\\), database ${prefix}orphan, role ${prefix}lost`))
  t.same(await footprint('halfway'), { catalog: null, database: false, role: false })
  t.ok(await silo.admin.databaseExists(`${prefix}orphan`), 'nothing dropped without --yes')
  t.ok(await silo.admin.roleExists(`${prefix}lost`))
  t.equal((await footprint('vanished')).catalog, 'active', 'and no catalog entry removed')

  const fixed = await cli('doctor', '--fix', '--yes')
  t.equal(fixed.code, 0, fixed.stderr)
  t.match(fixed.stdout, new RegExp(`removed or dropped: tenant vanished, database ${prefix}orphan, role ${prefix}lost`))
  const healthy = await cli('doctor', '--json')
  t.equal(healthy.code, 0)
  t.equal(JSON.parse(healthy.stdout).healthy, true)
  t.same(await footprint('vanished'), { catalog: null, database: false, role: false })
  t.notOk(await silo.admin.databaseExists(`${prefix}orphan`))
  t.notOk(await silo.admin.roleExists(`${prefix}lost`))
  t.ok(await silo.admin.databaseExists(`${prefix}stranger`), 'what is not ours is never touched')
  t.same(await footprint('acme'), { catalog: 'active', database: true, role: true }, 'healthy tenants are untouched')
  t.ok(await silo.admin.databaseExists(templateDatabaseName(prefix, silo.ownership.identity)), 'the template is not an orphan')
  t.equal((await cli('doctor', '--yes')).code, 2, '--yes without --fix is a usage error')
})

t.test('a create killed mid-way is completed by a re-run, or cleaned by doctor --fix', async (t) => {
  for (const [slug, recover] of [['killed-a', 'rerun'], ['killed-b', 'doctor']] as const) {
    const child = spawnCli(['create', slug, '--domain', `${slug}.test`, '--seed'], env)
    const exited = new Promise((resolve) => { child.on('close', resolve) })
    // Kill it as soon as its catalog row exists, before it could finish.
    await eventually(async () => (await silo.catalog.tenantBySlug(slug)) !== null, 20000, 2)
    child.kill('SIGKILL')
    await exited
    const left = await footprint(slug)
    t.not(left.catalog, null, `${slug}: the kill left a catalog entry (${JSON.stringify(left)})`)
    if (recover === 'rerun') {
      const rerun = await cli('create', slug, '--domain', `${slug}.test`, '--seed')
      t.equal(rerun.code, 0, rerun.stderr)
      t.same(await footprint(slug), { catalog: 'active', database: true, role: true })
    } else {
      t.equal((await cli('doctor', '--fix')).code, 0, 'a half-made tenant is repaired without --yes')
      t.same(await footprint(slug), { catalog: null, database: false, role: false })
    }
  }
  t.equal(JSON.parse((await cli('doctor', '--json')).stdout).healthy, true, 'consistent in the end')
})

t.test('a crash right after any step of create or drop is repaired by a re-run or by doctor --fix', async (t) => {
  const articles = async (slug: string): Promise<number> => {
    const tenant = await silo.catalog.tenantBySlug(slug)
    if (tenant === null) throw new Error(`no tenant ${slug}`)
    return await silo.migrator.withDatabase(tenant, async (db) => Number((await db('articles').count<Array<{ n: string }>>('* as n'))[0]?.n))
  }
  // What a process killed right after each step of create leaves: the steps before it, done, and nothing else.
  const createSteps = ['catalog', 'role', 'database', 'migrate', 'seed'] as const
  const crashCreate = async (slug: string, after: typeof createSteps[number]): Promise<void> => {
    const name = `${prefix}${slug.replaceAll('-', '_')}`
    const done = createSteps.indexOf(after)
    const tenant = await silo.catalog.insertTenant({ slug, name: slug, databaseName: name, databaseUser: name, password: 'pw-left-by-a-crash', domains: [`${slug}.test`] })
    if (done >= 1) await silo.admin.ensureRole(name, tenant.database.password, silo.ownership.mark('tenant'))
    if (done >= 2) await silo.admin.ensureDatabase(name, name, { mark: silo.ownership.mark('tenant') })
    if (done >= 3) await silo.migrator.migrate(tenant)
    if (done >= 4) await silo.migrator.seed(tenant)
  }
  for (const [index, after] of createSteps.entries()) {
    const rerun = `crash-c${index}-rerun`
    await crashCreate(rerun, after)
    const created = await cli('create', rerun, '--domain', `${rerun}.test`, '--seed')
    t.equal(created.code, 0, `create crashed after ${after}, re-run: ${created.stderr}`)
    t.same(await footprint(rerun), { catalog: 'active', database: true, role: true }, `re-run after a crash after ${after} completes the tenant`)
    t.equal(await articles(rerun), 5, 'seeded exactly once')

    await crashCreate(`crash-c${index}-doctor`, after)
  }

  // What a drop killed right after each step leaves: marked dropping, then database gone, then role gone.
  const dropSteps = ['mark', 'drop-database', 'drop-role'] as const
  const crashDrop = async (slug: string, after: typeof dropSteps[number]): Promise<void> => {
    const name = `${prefix}${slug.replaceAll('-', '_')}`
    await silo.provisioner.create({ slug, domains: [`${slug}.test`] })
    await silo.catalog.setStatus(slug, 'dropping')
    if (dropSteps.indexOf(after) >= 1) await silo.admin.dropDatabaseUnchecked(name)
    if (dropSteps.indexOf(after) >= 2) await silo.admin.dropRoleUnchecked(name)
  }
  for (const [index, after] of dropSteps.entries()) {
    const rerun = `crash-d${index}-rerun`
    await crashDrop(rerun, after)
    const dropped = await cli('drop', rerun, '--yes')
    t.equal(dropped.code, 0, `drop crashed after ${after}, re-run: ${dropped.stderr}`)
    t.same(await footprint(rerun), { catalog: null, database: false, role: false }, `re-run of a drop crashed after ${after} removes everything`)

    await crashDrop(`crash-d${index}-doctor`, after)
  }

  // One doctor --fix repairs every state left above at once.
  const fixed = await cli('doctor', '--fix')
  t.equal(fixed.code, 0, fixed.stderr)
  for (const [index, after] of createSteps.entries()) {
    t.same(await footprint(`crash-c${index}-doctor`), { catalog: null, database: false, role: false }, `doctor --fix after a create crashed after ${after} leaves nothing`)
  }
  for (const [index, after] of dropSteps.entries()) {
    t.same(await footprint(`crash-d${index}-doctor`), { catalog: null, database: false, role: false }, `doctor --fix after a drop crashed after ${after} leaves nothing`)
  }
  const report = JSON.parse((await cli('doctor', '--json')).stdout)
  t.equal(report.healthy, true, 'consistent in the end')
  t.same(await footprint('acme'), { catalog: 'active', database: true, role: true }, 'other tenants are untouched')
})
