/**
 * Silo's benchmark suite: `npm run bench` (full, by hand) or `npm run bench -- --quick` (smoke).
 * Provisions its own tenants on DATABASE_URL (or an embedded server), runs every scenario,
 * cleans up, and prints a markdown table and then JSON. Every figure is a ratio against a
 * baseline measured in the same run, never an absolute time judged on its own.
 */
import { randomBytes } from 'node:crypto'
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { DirectoryMigrationSource } from '../src/db/migration-source.js'
import { tenantMigrationsDir } from '../src/db/paths.js'
import { migrateFleet } from '../src/tenancy/fleet-migrator.js'
import { TenantMigrator } from '../src/tenancy/tenant-migrator.js'
import type { TenantRecord } from '../src/catalog/catalog-store.js'
import { naivePeerApp, siloApp, singleDatabaseApp } from './apps.js'
import { benchEnv, benchSilo, cleanup, provisionTenants, withBackendSampler } from './fixtures.js'
import { hostOf, slugOf, type HostSpec } from './hosts.js'
import { load, median, type LoadResult } from './load.js'

const quick = process.argv.includes('--quick')
const size = quick
  ? { tenants: 120, timedCreates: 20, connections: 16, durationS: 1.5, coldSamples: 10, fleet: 120 }
  : { tenants: 1000, timedCreates: 200, connections: 32, durationS: 8, coldSamples: 40, fleet: 1000 }
const log = (line: string): void => { process.stderr.write(`${line}\n`) }

interface Row { scenario: string, figure: string, value: number, target: string, met: boolean, detail: string }
const rows: Row[] = []
const record = (row: Row): void => { rows.push(row); log(`  ${row.scenario}: ${row.figure} = ${row.value.toFixed(3)} (${row.target}) ${row.met ? 'met' : 'NOT met'} ${row.detail}`) }
const brief = (r: LoadResult): string => `${Math.round(r.okPerS)} ok/s, p99 ${r.p99Ms} ms, ${r.non2xx} non-2xx, ${r.errors} errors`

const env = benchEnv()
const pick = (n: number): HostSpec => ({ kind: 'uniform', n })
const loadArticles = async (url: string, host: HostSpec): Promise<LoadResult> =>
  await load({ url, path: '/articles/1', host, connections: size.connections, durationS: size.durationS })

try {
  log(`provisioning ${size.tenants} tenants (catalog ${env.catalogDatabase})`)
  const setup = await benchSilo(env)
  const provisioning = await provisionTenants(setup, size.tenants, size.timedCreates, log)
  record({ scenario: 'provision', figure: 'median ms per tenant', value: provisioning.medianMs, target: '<= 60 ms', met: provisioning.medianMs <= 60, detail: `p95 ${provisioning.p95Ms.toFixed(1)} ms over ${provisioning.count} POST /tenants (template clone)` })

  // Baselines: the single-database app on a database cloned from the same template.
  const singleRole = `${env.prefix}_single`
  const singlePassword = randomBytes(18).toString('base64url')
  await setup.admin.ensureRole(singleRole, singlePassword)
  await setup.template?.clone(singleRole, singleRole)
  const single = await singleDatabaseApp({ ...setup.server, database: singleRole, user: singleRole, password: singlePassword }, 10)
  const singleResult = await loadArticles(single.url, { kind: 'fixed', host: 'single.bench' })
  await single.close()
  log(`  single-database baseline: ${brief(singleResult)}`)

  const runSilo = async (overrides: Record<string, string | number>, host: HostSpec, path = '/articles/1') => {
    const silo = await benchSilo(env, overrides)
    const app = await siloApp(silo)
    try {
      return await withBackendSampler(silo, async () => await load({ url: app.url, path, host, connections: size.connections, durationS: size.durationS }))
    } finally {
      await app.close()
      await silo.close()
    }
  }

  const ceiling = (await runSilo({}, pick(10), '/ping')).value
  log(`  HTTP ceiling (/ping): ${brief(ceiling)}`)

  const hot = await runSilo({}, pick(10))
  record({ scenario: 'hot', figure: 'ratio to single database', value: hot.value.okPerS / singleResult.okPerS, target: '>= 0.95', met: hot.value.okPerS / singleResult.okPerS >= 0.95, detail: brief(hot.value) })

  const wide = await runSilo({ CONNECTION_BUDGET: 50 }, pick(Math.min(100, size.tenants)))
  const wideRatio = wide.value.okPerS / singleResult.okPerS
  record({ scenario: 'wide', figure: 'ratio to single database', value: wideRatio, target: '>= 0.90, backends <= 50', met: wideRatio >= 0.9 && wide.peakBackends <= 50, detail: `${brief(wide.value)}, peak backends ${wide.peakBackends}` })

  const skewed = await runSilo({ TENANT_POOLS_MAX: 50, CONNECTION_BUDGET: 60 }, { kind: 'zipf', n: size.tenants, s: 1.1 })
  const skewedRatio = skewed.value.okPerS / singleResult.okPerS
  const skewedClean = skewed.value.non2xx === 0 && skewed.value.errors === 0
  record({ scenario: 'skewed', figure: 'ratio to single database', value: skewedRatio, target: '>= 0.75, 0 errors, backends <= 60', met: skewedRatio >= 0.75 && skewedClean && skewed.peakBackends <= 60, detail: `Zipf(1.1) over ${size.tenants}; ${brief(skewed.value)}, peak backends ${skewed.peakBackends}` })

  const churn = await runSilo({ TENANT_POOLS_MAX: 100, CONNECTION_BUDGET: 60 }, pick(size.tenants))
  const byHost = new Map<string, TenantRecord>()
  for (let i = 0; i < size.tenants; i++) {
    const tenant = await setup.catalog.tenantBySlug(slugOf(i))
    if (tenant !== null) byHost.set(hostOf(i), tenant)
  }
  const naive = await naivePeerApp(byHost, setup.server, 100)
  const naiveResult = await loadArticles(naive.url, pick(size.tenants))
  await naive.close()
  const churnRatio = churn.value.okPerS / Math.max(1, naiveResult.okPerS)
  record({ scenario: 'churn', figure: 'ratio to naive peer', value: churnRatio, target: '>= 3', met: churnRatio >= 3, detail: `uniform over ${size.tenants}, 100 pools; Silo ${brief(churn.value)}; naive ${brief(naiveResult)}` })

  const unknown = await runSilo({}, { kind: 'unknown' })
  const unknownRatio = unknown.value.rps / ceiling.rps
  record({ scenario: 'unknown hosts', figure: '404 rate / HTTP ceiling', value: unknownRatio, target: '>= 0.8', met: unknownRatio >= 0.8, detail: `${Math.round(unknown.value.rps)} req/s, ${unknown.value.non2xx} 404s` })

  // Cold: first request for a tenant no cache has seen, against a raw pg connect + query.
  {
    const silo = await benchSilo(env, { TENANT_POOLS_MAX: 1000 })
    const app = await siloApp(silo)
    const cold: number[] = []
    const raw: number[] = []
    const warm: number[] = []
    for (let i = 0; i < size.coldSamples; i++) {
      const tenant = await setup.catalog.tenantBySlug(slugOf(i))
      if (tenant === null) continue
      const t0 = performance.now()
      const client = new pg.Client({ ...setup.server, database: tenant.database.name, user: tenant.database.user, password: tenant.database.password })
      await client.connect()
      await client.query('select * from articles where id = 1')
      raw.push(performance.now() - t0)
      await client.end()
      const t1 = performance.now()
      const res = await app.app.inject({ url: '/articles/1', headers: { host: hostOf(i) } })
      cold.push(performance.now() - t1)
      if (res.statusCode !== 200) throw new Error(`cold request failed: ${res.statusCode}`)
      const t2 = performance.now()
      await app.app.inject({ url: '/articles/1', headers: { host: hostOf(i) } })
      warm.push(performance.now() - t2)
    }
    await app.close()
    await silo.close()
    const overhead = median(cold) - median(raw)
    record({ scenario: 'cold', figure: 'ms over raw pg connect+query', value: overhead, target: '<= 2 ms', met: overhead <= 2, detail: `median cold ${median(cold).toFixed(2)} ms, raw ${median(raw).toFixed(2)} ms, warm ${median(warm).toFixed(2)} ms` })
  }

  // Memory per cached idle tenant: every tenant's pool cached, its connections closed by the idle timeout.
  {
    const gc = (globalThis as { gc?: () => void }).gc
    const silo = await benchSilo(env, { TENANT_POOLS_MAX: size.tenants + 10, TENANT_IDLE_TIMEOUT_MS: 100, CONNECTION_BUDGET: 40 })
    const app = await siloApp(silo)
    const settle = async (): Promise<{ heap: number, rss: number }> => {
      await new Promise((resolve) => setTimeout(resolve, 2500))
      gc?.(); gc?.()
      const usage = process.memoryUsage()
      return { heap: usage.heapUsed, rss: usage.rss }
    }
    const before = await settle()
    for (let i = 0; i < size.tenants; i++) await app.app.inject({ url: '/articles/1', headers: { host: hostOf(i) } })
    const after = await settle()
    const stats = silo.pools.stats()
    await app.close()
    await silo.close()
    const heapPer = (after.heap - before.heap) / size.tenants / 1024
    const rssPer = (after.rss - before.rss) / size.tenants / 1024
    record({ scenario: 'memory', figure: 'KB heap per idle cached tenant', value: heapPer, target: '<= 30 KB', met: heapPer <= 30 && rssPer <= 30, detail: `RSS ${rssPer.toFixed(1)} KB per tenant; ${stats.pools} pools cached, ${stats.connections.free + stats.connections.used} connections open${gc === undefined ? '; no --expose-gc' : ''}` })
  }

  // Fleet: one additive migration over every tenant.
  {
    const dir = await mkdtemp(join(tmpdir(), 'silo-bench-migrations-'))
    for (const file of await readdir(tenantMigrationsDir)) {
      if (file.endsWith('.ts') || file.endsWith('.js')) await copyFile(new URL(file, tenantMigrationsDir), join(dir, file))
    }
    const extension = (await readdir(tenantMigrationsDir)).some((file) => file.endsWith('.ts')) ? '.ts' : '.js'
    await writeFile(join(dir, `20991231000000_bench_additive${extension}`),
      'export async function up (knex) { await knex.schema.alterTable(\'articles\', (t) => { t.text(\'bench_note\') }) }\n' +
      'export async function down (knex) { await knex.schema.alterTable(\'articles\', (t) => { t.dropColumn(\'bench_note\') }) }\n')
    const migrator = new TenantMigrator(setup.server, setup.serverVersion, new DirectoryMigrationSource(pathToFileURL(`${dir}/`)))
    const slugs = Array.from({ length: size.fleet }, (_, i) => slugOf(i))
    const t0 = performance.now()
    const results = await migrateFleet(setup.catalog, migrator, slugs, { concurrency: 8 })
    const seconds = (performance.now() - t0) / 1000
    await rm(dir, { recursive: true, force: true })
    const failed = results.filter((r) => r.status !== 'migrated').length
    const projected = seconds * (1000 / size.fleet)
    record({ scenario: 'fleet migration', figure: 's for 1,000 tenants', value: projected, target: '< 30 s', met: projected < 30 && failed === 0, detail: `${size.fleet} tenants in ${seconds.toFixed(1)} s at concurrency 8, ${failed} not migrated${size.fleet === 1000 ? '' : ' (scaled to 1,000)'}` })
  }
  await setup.close()
} finally {
  log('cleaning up')
  await cleanup(env)
}

const format = (row: Row): string => `| ${row.scenario} | ${row.figure} | ${row.value.toFixed(3)} | ${row.target} | ${row.met ? 'yes' : '**no**'} | ${row.detail} |`
console.log(`\n## Silo benchmark (${quick ? 'quick' : 'full'}) — ${new Date().toISOString()}\n`)
console.log('| scenario | figure | value | target | met | detail |\n| --- | --- | --- | --- | --- | --- |')
for (const row of rows) console.log(format(row))
console.log('\n```json\n' + JSON.stringify({ mode: quick ? 'quick' : 'full', rows }, null, 2) + '\n```')
