import t from './helpers/tap.js'
import { loadConfig } from '../src/config.js'
import { openSilo } from '../src/silo.js'
import { runCli, type CliResult } from './helpers/cli.js'
import { createTenant, dropTestDatabases, testEnv } from './helpers/silo.js'

const env = testEnv()
const config = loadConfig(env, { env: false, dotenv: false })
t.teardown(async () => { await dropTestDatabases(config) })
const silo = await openSilo(config, { listen: false })
t.teardown(async () => { await silo.close() })
const cli = async (...args: string[]): Promise<CliResult> => await runCli(args, env)

const latest = await silo.migrator.latestVersion()
await createTenant(silo, 'acme', { seed: true })
await createTenant(silo, 'globex', { seed: true })
await createTenant(silo, 'a-rather-long-tenant-slug')

/** Articles in a tenant's database, or null when its articles table is gone. */
const articles = async (slug: string): Promise<number | null> => {
  const tenant = await silo.catalog.tenantBySlug(slug)
  if (tenant === null) throw new Error(`no tenant ${slug}`)
  return await silo.migrator.withDatabase(tenant, async (db) => {
    if (!(await db.schema.hasTable('articles'))) return null
    return Number((await db('articles').count<Array<{ n: string }>>('* as n'))[0]?.n)
  })
}
const recorded = async (slug: string): Promise<string[]> => {
  const tenant = await silo.catalog.tenantBySlug(slug)
  if (tenant === null) throw new Error(`no tenant ${slug}`)
  return await silo.migrator.withDatabase(tenant, async (db) => (await db('knex_migrations').orderBy('id').pluck('name')) as string[])
}

t.test('rollback without --yes prints what it would undo, changes nothing and exits 2; with --yes it rolls back', async (t) => {
  t.equal(await articles('acme'), 5, 'acme has its seeded articles')

  const refused = await cli('rollback', 'acme', 'globex')
  t.equal(refused.code, 2, 'refused like drop without --yes: a usage error')
  t.match(refused.stderr, /--yes/)
  t.equal(refused.stderr.trim().split('\n').length, 1, 'one line on stderr')
  t.match(refused.stdout, new RegExp(`^acme\\s+undo ${latest ?? ''} \\(${latest ?? ''} -> \\(none\\)\\)$`, 'm'), "the plan names acme's last batch")
  t.match(refused.stdout, /^globex\s+undo /m)

  const planned = await cli('rollback', '--all', '--json')
  t.equal(planned.code, 2)
  t.same((JSON.parse(planned.stdout) as { plan: unknown[] }).plan, ['a-rather-long-tenant-slug', 'acme', 'globex'].map((slug) => ({ slug, undo: [latest], before: latest, after: null })), '--json prints the plan')

  const unknown = await cli('rollback', 'acme', 'nobody')
  t.equal(unknown.code, 2)
  t.match(unknown.stdout, /^nobody\s+not rolled back: no such tenant$/m)

  t.equal(await articles('acme'), 5, 'without --yes the articles are still there')
  t.same(await recorded('acme'), [latest], 'and the migration is still recorded')
  t.equal((await silo.catalog.tenantBySlug('acme'))?.schemaVersion, latest, 'and the catalog still has its version')

  const done = await cli('rollback', 'acme', '--yes')
  t.equal(done.code, 0, done.stderr)
  t.match(done.stdout, /^ok\s+acme\s+rolled-back\s/m, 'the tenant line says rolled back')
  t.match(done.stdout, /^1 tenants: 1 rolled back, 0 with nothing to undo, 0 skipped, 0 failed/m, 'and so does the summary')
  t.notMatch(done.stdout, /migrated/)
  t.equal(await articles('acme'), null, 'with --yes the articles table is gone')
  t.same(await recorded('acme'), [])
  t.equal(await articles('globex'), 5, 'a tenant not named is untouched')
})

t.test('migrate prints one line per tenant as it finishes, with slug, status, versions and duration aligned', async (t) => {
  const run = await cli('migrate', 'acme', 'globex', 'nobody', 'a-rather-long-tenant-slug', '--concurrency', '2')
  t.equal(run.code, 1, 'the unknown tenant fails the run')
  const lines = run.stdout.split('\n').filter((line) => /^(ok|skip|FAIL) /.test(line))
  t.equal(lines.length, 4, run.stdout)
  const columns = lines.map((line) => {
    const match = /^(?:ok|skip|FAIL)\s+(?<slug>\S+)\s+(?<status>\S+)\s+(?<before>\S+)\s+(?<arrow>->)\s+(?<after>\S+)\s+(?<duration>\d+ ms)/d.exec(line)
    if (match?.indices?.groups === undefined) throw new Error(`unexpected line: ${line}`)
    const at = match.indices.groups
    const start = (name: string): number => at[name]?.[0] ?? -1
    return { slug: start('slug'), status: start('status'), before: start('before'), arrow: start('arrow'), after: start('after'), durationEnd: at.duration?.[1] ?? -1 }
  })
  t.comment(lines.join('\n'))
  for (const column of ['slug', 'status', 'before', 'arrow', 'after', 'durationEnd'] as const) {
    t.equal(new Set(columns.map((c) => c[column])).size, 1, `${column} lines up on every line`)
  }
  t.match(run.stdout, /^ok\s+acme\s+migrated\s+\(none\)\s+->\s+\S+\s+\d+ ms$/m, 'acme, rolled back before, is migrated')
  t.match(run.stdout, /^FAIL nobody\s+failed\s.*ms: no such tenant$/m)
})
