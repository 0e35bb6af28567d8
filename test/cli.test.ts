import t from './helpers/tap.js'
import pg from 'pg'
import { loadConfig } from '../src/config.js'
import { connectionFromUrl } from '../src/db/knex-config.js'
import { openSilo, type Silo } from '../src/silo.js'
import { runCli, type CliResult } from './helpers/cli.js'
import { dropTestDatabases, testEnv } from './helpers/silo.js'

const env = testEnv()
const config = loadConfig(env, { env: false, dotenv: false })
t.teardown(async () => { await dropTestDatabases(config) })
const cli = async (...args: string[]): Promise<CliResult> => await runCli(args, env)

/** The core, opened on the CLI's catalog, to look at what the CLI did from the outside. */
let silo: Silo | undefined
const core = async (): Promise<Silo> => {
  silo ??= await openSilo(config)
  return silo
}
t.teardown(async () => { await silo?.close() })

const secretsSeen: string[] = [String(env.SECRET_KEY)]
const outputs: CliResult[] = []
const run = async (...args: string[]): Promise<CliResult> => {
  const result = await cli(...args)
  outputs.push(result)
  return result
}

const footprint = async (slug: string) => {
  const s = await core()
  const name = `${config.tenantDbPrefix}${slug.replaceAll('-', '_')}`
  return { catalog: await s.catalog.tenantBySlug(slug) !== null, database: await s.admin.databaseExists(name), role: await s.admin.roleExists(name) }
}

t.test('create then list shows the tenant active, with its domains and the newest schema', async (t) => {
  const created = await run('create', 'acme', '--domain', 'acme.test', '--domain', 'WWW.Acme.Test', '--name', 'Acme Inc', '--seed')
  t.equal(created.code, 0, created.stderr)
  t.match(created.stdout, /created acme/)
  const globex = await run('create', 'globex', '--domain', 'globex.test')
  t.equal(globex.code, 0, globex.stderr)

  const listed = await run('list', '--json')
  t.equal(listed.code, 0)
  const tenants = JSON.parse(listed.stdout) as Array<Record<string, unknown>>
  const latest = await (await core()).migrator.latestVersion()
  t.match(tenants, [
    { slug: 'acme', name: 'Acme Inc', status: 'active', schemaVersion: latest, domains: ['acme.test', 'www.acme.test'], primaryDomain: 'acme.test' },
    { slug: 'globex', status: 'active', schemaVersion: latest, domains: ['globex.test'] }
  ])
  const human = await run('list')
  t.match(human.stdout, /acme\s+active/)

  const s = await core()
  const acme = await s.catalog.tenantBySlug('acme')
  if (acme === null) throw new Error('no acme')
  secretsSeen.push(acme.database.password)
  t.equal(await s.migrator.withDatabase(acme, async (db) => Number((await db('articles').count<Array<{ count: string }>>('* as count'))[0]?.count)), 5, '--seed added the demo articles')
})

t.test("a tenant's role can connect to its own database and not to another tenant's", async (t) => {
  const s = await core()
  const acme = await s.catalog.tenantBySlug('acme')
  const globex = await s.catalog.tenantBySlug('globex')
  if (acme === null || globex === null) throw new Error('tenants missing')
  secretsSeen.push(globex.database.password)
  const server = connectionFromUrl(config.databaseUrl ?? '')
  const connectAs = async (user: string, password: string, database: string): Promise<string> => {
    const client = new pg.Client({ host: server.host, port: server.port, user, password, database })
    try {
      await client.connect()
      const { rows } = await client.query<{ db: string }>('select current_database() as db')
      return rows[0]?.db ?? ''
    } finally {
      await client.end().catch(() => {})
    }
  }
  t.equal(await connectAs(acme.database.user, acme.database.password, acme.database.name), acme.database.name)
  await t.rejects(connectAs(acme.database.user, acme.database.password, globex.database.name), { code: '42501' }, 'acme cannot connect to globex')
  await t.rejects(connectAs(globex.database.user, globex.database.password, acme.database.name), { code: '42501' }, 'globex cannot connect to acme')
  await t.rejects(connectAs(acme.database.user, acme.database.password, config.catalogDatabase), { code: '42501' }, 'nor to the catalog')
})

t.test('migrate reports every tenant and its exit code tells whether all succeeded', async (t) => {
  const all = await run('migrate', '--all', '--json', '--concurrency', '2')
  t.equal(all.code, 0, all.stderr)
  const report = JSON.parse(all.stdout) as { results: Array<{ slug: string, status: string }>, summary: Record<string, number> }
  t.same(report.results.map((r) => [r.slug, r.status]), [['acme', 'up-to-date'], ['globex', 'up-to-date']])
  t.match(report.summary, { tenants: 2, failed: 0 })

  const withUnknown = await run('migrate', 'acme', 'nobody', 'globex')
  t.equal(withUnknown.code, 1, 'an unknown tenant fails the run')
  t.match(withUnknown.stdout, /acme\s+up-to-date/)
  t.match(withUnknown.stdout, /globex\s+up-to-date/)
  t.match(withUnknown.stdout, /FAIL nobody/)

  const status = await run('status', '--json')
  t.equal(status.code, 0)
  t.ok((JSON.parse(status.stdout) as Array<{ current: boolean }>).every((row) => row.current))

  const refusals = [['migrate'], ['migrate', 'acme', '--all'], ['migrate', '--all', '--concurrency', '0'], ['migrate', '--all', '--concurrency', 'x']]
  for (const [args, refused] of await Promise.all(refusals.map(async (args) => [args, await run(...args)] as const))) {
    t.not(refused.code, 0, args.join(' '))
    t.match(refused.stderr, /\S/, `${args.join(' ')} explains itself`)
  }
})

t.test('rejected slugs and domains create nothing', async (t) => {
  const before = (await (await core()).catalog.listTenants()).length
  const badSlugs = ['A', '1abc', 'x;drop', '$(id)', 'a'.repeat(41), "ab'c"]
  // Refusals change nothing, so they run at once; their results are checked in order.
  for (const [slug, result] of await Promise.all(badSlugs.map(async (slug) => [slug, await run('create', slug, '--domain', 'fine.test')] as const))) {
    t.not(result.code, 0, `slug ${JSON.stringify(slug)}`)
    t.match(result.stderr, /^tenants: Invalid slug/, `slug ${JSON.stringify(slug)} explained`)
    t.equal(result.stderr.trim().split('\n').length, 1, 'one line')
  }
  const badDomains = ['bad_host', 'host:80', '127.0.0.1', "x'.test"]
  for (const [domain, result] of await Promise.all(badDomains.map(async (domain) => [domain, await run('create', 'valid-slug', '--domain', domain)] as const))) {
    t.not(result.code, 0, `domain ${JSON.stringify(domain)}`)
    t.match(result.stderr, /^tenants: Invalid domain/, `domain ${JSON.stringify(domain)} explained`)
  }
  const noDomain = await run('create', 'valid-slug')
  t.not(noDomain.code, 0, 'a domain is required')
  const optionLike = await run('create', '-ab', '--domain', 'fine.test')
  t.not(optionLike.code, 0, 'a slug that looks like an option is refused')
  t.equal(optionLike.stderr.trim().split('\n').length, 1, 'in one line')
  t.same(await footprint('valid-slug'), { catalog: false, database: false, role: false })
  t.equal((await (await core()).catalog.listTenants()).length, before)
})

t.test('a taken slug or domain is refused and the first tenant is untouched', async (t) => {
  const slugTaken = await run('create', 'acme', '--domain', 'other.test')
  t.equal(slugTaken.code, 1)
  t.match(slugTaken.stderr, /^tenants: Slug acme is taken/)
  const domainTaken = await run('create', 'initech', '--domain', 'initech.test', '--domain', 'acme.test')
  t.equal(domainTaken.code, 1)
  t.match(domainTaken.stderr, /^tenants: Domain acme\.test is taken/)
  t.same(await footprint('initech'), { catalog: false, database: false, role: false })
  const acme = JSON.parse((await run('list', '--json')).stdout).find((tenant: { slug: string }) => tenant.slug === 'acme')
  t.match(acme, { status: 'active', domains: ['acme.test', 'www.acme.test'] })
})

t.test('suspend, resume and domains change what list shows', async (t) => {
  t.equal((await run('suspend', 'globex')).code, 0)
  t.match(JSON.parse((await run('list', '--json')).stdout)[1], { slug: 'globex', status: 'suspended' })
  t.equal((await run('resume', 'globex')).code, 0)
  t.equal((await run('domains', 'add', 'globex', 'Globex.Example.')).code, 0)
  t.match(JSON.parse((await run('list', '--json')).stdout)[1], { slug: 'globex', status: 'active', domains: ['globex.test', 'globex.example'] })
  t.equal((await run('domains', 'remove', 'globex.test')).code, 0)
  t.match(JSON.parse((await run('list', '--json')).stdout)[1], { domains: ['globex.example'], primaryDomain: 'globex.example' })
  const missing = await run('domains', 'remove', 'nowhere.test')
  t.equal(missing.code, 1)
  t.match(missing.stderr, /not in the catalog/)
  t.equal((await run('suspend', 'nobody')).code, 1)
})

t.test('drop needs --yes, then removes database, role and catalog entry', async (t) => {
  const refused = await run('drop', 'globex')
  t.not(refused.code, 0)
  t.match(refused.stderr, /--yes/)
  t.same(await footprint('globex'), { catalog: true, database: true, role: true }, 'nothing was dropped')
  const dropped = await run('drop', 'globex', '--yes')
  t.equal(dropped.code, 0, dropped.stderr)
  t.same(await footprint('globex'), { catalog: false, database: false, role: false })
  t.equal((await run('drop', 'globex', '--yes')).code, 1, 'dropping it again is an error')
})

t.test('--help works for the program and every command', async (t) => {
  const commands = [['--help'], ['create', '--help'], ['migrate', '--help'], ['domains', '--help'], ['drop', '--help']]
  for (const [args, help] of await Promise.all(commands.map(async (args) => [args, await run(...args)] as const))) {
    t.equal(help.code, 0, args.join(' '))
    t.match(help.stdout, /Usage:/)
  }
})

t.test('no output ever carried a password or the secret key', async (t) => {
  t.ok(outputs.length > 30, `${outputs.length} commands checked`)
  const leaks = outputs.filter((output) => secretsSeen.some((secret) => output.stdout.includes(secret) || output.stderr.includes(secret)))
  t.equal(leaks.length, 0)
})
