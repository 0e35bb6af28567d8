import { writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { openSilo } from '../src/silo.js'
import { runCli, spawnCli } from './helpers/cli.js'
import { dropTestDatabases, testEnv } from './helpers/silo.js'

const env = testEnv()
const config = loadConfig(env, { env: false, dotenv: false })
t.teardown(async () => { await dropTestDatabases(config) })
const silo = await openSilo(config)
t.teardown(async () => { await silo.close() })
const cli = async (...args: string[]) => await runCli(args, env)
const prefix = config.tenantDbPrefix

const footprint = async (slug: string) => {
  const name = `${prefix}${slug.replaceAll('-', '_')}`
  return {
    catalog: (await silo.catalog.tenantBySlug(slug))?.status ?? null,
    database: await silo.admin.databaseExists(name),
    role: await silo.admin.roleExists(name)
  }
}

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

t.test('doctor finds orphans, missing databases and half-made tenants, and --fix repairs them', async (t) => {
  await silo.admin.ensurePrivateDatabase(`${prefix}orphan`)
  await silo.admin.ensureRole(`${prefix}lost`, 'some-password')
  await silo.provisioner.create({ slug: 'vanished', domains: ['vanished.test'] })
  await silo.admin.dropDatabase(`${prefix}vanished`)
  await silo.catalog.insertTenant({ slug: 'halfway', name: 'halfway', databaseName: `${prefix}halfway`, databaseUser: `${prefix}halfway`, password: 'pw-left-behind', domains: ['halfway.test'] })
  await silo.admin.ensureRole(`${prefix}halfway`, 'pw-left-behind')

  const sick = await cli('doctor', '--json')
  t.equal(sick.code, 1, 'problems found: exit 1')
  t.match(JSON.parse(sick.stdout), {
    healthy: false,
    report: { orphanDatabases: [`${prefix}orphan`], orphanRoles: [`${prefix}lost`], missingDatabases: ['halfway', 'vanished'], stuck: [{ slug: 'halfway', status: 'provisioning' }] }
  })
  const fixed = await cli('doctor', '--fix')
  t.equal(fixed.code, 0, fixed.stderr)
  t.match(fixed.stdout, /dropped: .*tenant halfway/)
  const healthy = await cli('doctor', '--json')
  t.equal(healthy.code, 0)
  t.equal(JSON.parse(healthy.stdout).healthy, true)
  t.same(await footprint('halfway'), { catalog: null, database: false, role: false })
  t.same(await footprint('vanished'), { catalog: null, database: false, role: false })
  t.same(await footprint('acme'), { catalog: 'active', database: true, role: true }, 'healthy tenants are untouched')
  t.ok(await silo.admin.databaseExists(`${prefix}_template`), 'the template is not an orphan')
})

t.test('a create killed mid-way is completed by a re-run, or cleaned by doctor --fix', async (t) => {
  for (const [slug, recover] of [['killed-a', 'rerun'], ['killed-b', 'doctor']] as const) {
    const child = spawnCli(['create', slug, '--domain', `${slug}.test`, '--seed'], env)
    const exited = new Promise((resolve) => { child.on('close', resolve) })
    // Kill it as soon as its catalog row exists, before it could finish.
    const deadline = Date.now() + 20000
    while (Date.now() < deadline && (await silo.catalog.tenantBySlug(slug)) === null) await new Promise((resolve) => setTimeout(resolve, 2))
    child.kill('SIGKILL')
    await exited
    const left = await footprint(slug)
    t.not(left.catalog, null, `${slug}: the kill left a catalog entry (${JSON.stringify(left)})`)
    if (recover === 'rerun') {
      const rerun = await cli('create', slug, '--domain', `${slug}.test`, '--seed')
      t.equal(rerun.code, 0, rerun.stderr)
      t.same(await footprint(slug), { catalog: 'active', database: true, role: true })
    } else {
      t.equal((await cli('doctor', '--fix')).code, 0)
      t.same(await footprint(slug), { catalog: null, database: false, role: false })
    }
  }
  t.equal(JSON.parse((await cli('doctor', '--json')).stdout).healthy, true, 'consistent in the end')
})
