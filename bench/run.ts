/**
 * Silo's benchmark suite: `npm run bench` (full, by hand) or `npm run bench -- --quick` (smoke);
 * `--only <scenario>[,<scenario>…]` runs those alone (`--only servers`, `--only 'fleet list'`).
 * Provisions its own tenants on DATABASE_URL (or an embedded server), runs every scenario,
 * cleans up, and prints a markdown table and then JSON. Every figure is judged as a ratio
 * against a baseline measured in the same run (absolute times are shown for context); load
 * comparisons alternate baseline and candidate rounds and compare medians.
 */
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import type { TenantRecord } from '../src/catalog/catalog-store.js'
import type { Silo } from '../src/silo.js'
import { naivePeerApp, poolPerTenantApp, siloApp, singleDatabaseApp, type Listening } from './apps.js'
import { coldRow, memoryRow } from './cold.js'
import { alternate, type Comparison, type Side } from './compare.js'
import { boundProbe, judgeBound, type BoundProbe, type TenantPattern } from './bound.js'
import { benchEnv, benchSilo, cleanup, provisionTenants, seedTemplate, withBackendSampler, type ProvisioningFigures } from './fixtures.js'
import { fleetMigration } from './fleet.js'
import { fleetList } from './fleet-list.js'
import { slugOf, type HostSpec } from './hosts.js'
import { brief, load, type LoadResult } from './load.js'
import type { StartRate } from './backend-start.js'
import { spreadOverServers, SECOND, type SpreadComparison } from './servers.js'
import { moveUnderLoad } from './move.js'
import { leaversRow } from './leavers.js'
import { hotInstructionsRow, missInstructionsRow } from './instructions.js'
import { SCENARIOS, selected, type RowFigures, type Scenario } from './scenarios.js'

const quick = process.argv.includes('--quick')
const size = quick
  ? { tenants: 120, timedCreates: 20, plainCreates: 8, connections: 16, durationS: 1.5, rounds: 1, coldSamples: 10, fleet: 120, fleetList: 5000, serverCreates: 20, moveArticles: 2000 }
  : { tenants: 1000, timedCreates: 200, plainCreates: 40, connections: 32, durationS: 5, rounds: 5, coldSamples: 40, fleet: 1000, fleetList: 100000, serverCreates: 200, moveArticles: 10000 }

const loadAtStart = loadavg()[0] ?? NaN
const only = selected(process.argv)
const wanted = (scenario: Scenario): boolean => only === undefined || only.has(scenario)
/** Every scenario but these reads the bench's own tenants, provisioned first. */
const needsTenants = SCENARIOS.some((scenario) => !['unknown hosts', 'fleet list', 'move'].includes(scenario) && wanted(scenario))
const log = (line: string): void => { process.stderr.write(`${line}\n`) }

interface Row extends RowFigures { scenario: string }
const rows: Row[] = []
const record = (row: Row): void => { rows.push(row); log(`  ${row.scenario}: ${row.figure} = ${row.value.toFixed(3)} (${row.target}) ${row.met ? 'met' : 'NOT met'} ${row.detail}`) }
const clean = (r: LoadResult): boolean => r.non2xx === 0 && r.errors === 0

const env = benchEnv()
const articles = (url: string, host: HostSpec): Side => ({ url, path: '/articles/1', host })
const uniform = (n: number): TenantPattern => ({ kind: 'uniform', n })
/** The bound of a pressured load on `silo`, its start samples as many at once as the load's connections. */
const probeOf = async (silo: Silo, pattern: TenantPattern, single?: Side): Promise<BoundProbe> => await boundProbe(silo, {
  pattern,
  clients: size.connections,
  durationS: size.durationS,
  ...(single === undefined ? {} : { single: async () => await load({ ...single, connections: size.connections, durationS: size.durationS }) })
})

/** A Silo instance with its own settings, listening, closed after `fn`. */
async function withSilo<T> (overrides: Record<string, string | number>, fn: (app: Listening, silo: Silo) => Promise<T>): Promise<T> {
  const silo = await benchSilo(env, overrides)
  const app = await siloApp(silo)
  try {
    return await fn(app, silo)
  } finally {
    await app.close()
    await silo.close()
  }
}

/** Alternating rounds, with the candidate's tenant backends sampled from pg_stat_activity, and the bound probed when `probe` is given. */
async function compare (
  baseline: Side,
  candidate: Side,
  options: { silo?: Silo, pick?: (r: LoadResult) => number, probe?: BoundProbe, sampleEachRound?: boolean } = {}
): Promise<Comparison & { peakBackends: number }> {
  const { silo, pick, probe } = options
  let peakBackends = 0
  const result = await alternate(baseline, candidate, {
    rounds: size.rounds,
    connections: size.connections,
    durationS: size.durationS,
    ...(pick === undefined ? {} : { pick }),
    during: async (fn) => {
      const round = probe === undefined ? fn : async () => await probe.count(fn)
      if (silo === undefined) return await round()
      const sampled = await withBackendSampler(silo, round)
      peakBackends = Math.max(peakBackends, sampled.peakBackends)
      return sampled.value
    },
    // The sampler's queries run during the baseline's rounds too (their counts unused), so both sides share its cost.
    ...(silo === undefined ? {} : { duringBaseline: async (fn) => (await withBackendSampler(silo, fn)).value }),
    ...(probe === undefined || options.sampleEachRound !== true ? {} : { between: probe.sample })
  })
  return { ...result, peakBackends }
}

async function provisionRow (provisioning: ProvisioningFigures): Promise<void> {
  const cloneOnly = await benchSilo(env, { TENANT_SPARES: 0 })
  const cloneFigures = await provisionTenants(cloneOnly, { count: size.plainCreates, timed: size.plainCreates, slug: (i) => `n${String(i).padStart(5, '0')}` })
  await cloneOnly.close()
  const plain = await benchSilo(env, { TENANT_TEMPLATE: 'off' })
  const plainFigures = await provisionTenants(plain, { count: size.plainCreates, timed: size.plainCreates, slug: (i) => `p${String(i).padStart(5, '0')}` })
  await plain.close()
  const provisionRatio = provisioning.medianMs / plainFigures.medianMs
  record({
    scenario: 'provision',
    figure: 'median create, ms',
    value: provisioning.medianMs,
    target: '<= 20 ms, p95 <= 40 ms',
    met: provisioning.medianMs <= 20 && provisioning.p95Ms <= 40,
    detail: `median ${provisioning.medianMs.toFixed(1)} ms (${provisionRatio.toFixed(3)} of create + migrate), p95 ${provisioning.p95Ms.toFixed(1)} ms over ${provisioning.count} POST /tenants one after another (TENANT_SPARES=2, TENANT_SPARES_MAX=16; databases from ${[...provisioning.sources].map(([source, n]) => `${source} ${n}`).join(', ')}); ` +
      `template clone without spares median ${cloneFigures.medianMs.toFixed(1)} ms, p95 ${cloneFigures.p95Ms.toFixed(1)} ms over ${cloneFigures.count}; ` +
      `plain create + knex migrate median ${plainFigures.medianMs.toFixed(1)} ms over ${plainFigures.count}`
  })
}

/** hot, wide, skewed and churn: against (or, for churn, beside) a plain Fastify + Knex app on one database cloned from the same template. */
async function singleDatabaseRows (setup: Silo): Promise<void> {
  const singleRole = `${env.prefix}_single`
  const singlePassword = randomBytes(18).toString('base64url')
  await setup.admin.ensureRole(singleRole, singlePassword, setup.ownership.mark('tenant'))
  await setup.template?.clone(singleRole, singleRole)
  const singleConnection = { ...setup.server, database: singleRole, user: singleRole, password: singlePassword }
  const single = await singleDatabaseApp(singleConnection, 10)
  const singleSide = articles(single.url, { kind: 'fixed', host: 'single.bench' })
  try {
    if (wanted('hot')) await hotRow(setup, singleSide)
    if (wanted('hot instructions')) record({ scenario: 'hot instructions', ...await hotInstructionsRow(env, singleConnection, { tenants: 10, warmup: quick ? 300 : 1500, requests: quick ? 200 : 1000 }) })
    if (wanted('cold instructions')) record({ scenario: 'cold instructions', ...await missInstructionsRow(env, singleConnection, { tenants: 40, warmup: quick ? 60 : 1500, requests: quick ? 60 : 400 }) })
    if (wanted('wide')) {
      const pattern = uniform(Math.min(100, size.tenants))
      await withSilo({ CONNECTION_BUDGET: 50 }, async (app, silo) => {
        const probe = await probeOf(silo, pattern)
        const wide = await probe.bracket(async () => await compare(singleSide, articles(app.url, pattern), { silo, probe }), async () => await app.reset?.())
        const judged = judgeBound(probe.figures({ siloOkPerS: wide.candidate.okPerS, rSingle: wide.baseline.okPerS }), { budget: 50, peakBackends: wide.peakBackends, clean: clean(wide.candidate) })
        record({ scenario: 'wide', figure: 'ratio to the bound', ...judged, detail: `${pattern.n} tenants uniform, budget 50; Silo ${brief(wide.candidate)}, peak backends ${wide.peakBackends}; single ${brief(wide.baseline)}, ratio to it ${wide.ratio.toFixed(3)}; ${judged.detail}` })
      })
    }
    if (wanted('skewed')) {
      const pattern: TenantPattern = { kind: 'zipf', n: size.tenants, s: 1.1 }
      await withSilo({ TENANT_POOLS_MAX: 50, CONNECTION_BUDGET: 60 }, async (app, silo) => {
        const probe = await probeOf(silo, pattern)
        const skewed = await probe.bracket(async () => await compare(singleSide, articles(app.url, pattern), { silo, probe }), async () => await app.reset?.())
        const judged = judgeBound(probe.figures({ siloOkPerS: skewed.candidate.okPerS, rSingle: skewed.baseline.okPerS }), { budget: 60, peakBackends: skewed.peakBackends, clean: clean(skewed.candidate) })
        record({ scenario: 'skewed', figure: 'ratio to the bound', ...judged, detail: `Zipf(1.1) over ${size.tenants}, 50 pools, budget 60; Silo ${brief(skewed.candidate)}, peak backends ${skewed.peakBackends}; single ${brief(skewed.baseline)}, ratio to it ${skewed.ratio.toFixed(3)}; ${judged.detail}` })
      })
    }
    if (wanted('churn')) await churnRow(setup, singleSide)
  } finally {
    await single.close()
  }
}

/** Silo over ten tenants against the single-database app; beside it, in rounds of their own, the same tenants on one Knex pool of one connection each (poolPerTenantApp): what ten databases cost by themselves. */
async function hotRow (setup: Silo, single: Side): Promise<void> {
  const records = await setup.catalog.tenantsBySlugs(Array.from({ length: 10 }, (_, i) => slugOf(i)))
  const pools = await poolPerTenantApp(new Map([...records.values()].map((tenant) => [`${tenant.slug}.bench`, tenant])))
  const bare = await compare(single, articles(pools.url, uniform(10))).finally(async () => { await pools.close() })
  const p99 = (c: Comparison): number => c.candidate.p99Ms / c.baseline.p99Ms
  await withSilo({}, async (app, silo) => {
    const hot = await compare(single, articles(app.url, uniform(10)), { silo })
    record({ scenario: 'hot', figure: 'ratio to single database', value: hot.ratio, target: '>= 0.95, p99 <= 1.5x', met: hot.ratio >= 0.95 && p99(hot) <= 1.5, detail: `10 tenants; Silo ${brief(hot.candidate)}, peak backends ${hot.peakBackends} (pools grew ${silo.pools.stats().grown} times); single ${brief(hot.baseline)} (10 connections); p99 ${p99(hot).toFixed(2)}x; one pool of one connection per tenant, no Silo, in rounds of its own: ${bare.ratio.toFixed(3)} of the single app (${brief(bare.candidate)}; single ${brief(bare.baseline)}; p99 ${p99(bare).toFixed(2)}x)` })
  })
}

/** Against the naive peer; the bound's R_single from rounds of the single-database app between the pairs. */
async function churnRow (setup: Silo, single: Side): Promise<void> {
  const records = await setup.catalog.tenantsBySlugs(Array.from({ length: size.tenants }, (_, i) => slugOf(i)))
  const byHost = new Map<string, TenantRecord>([...records.values()].map((tenant) => [`${tenant.slug}.bench`, tenant]))
  const naive = await naivePeerApp(byHost, setup.server, 100)
  const pattern = uniform(size.tenants)
  try {
    await withSilo({ TENANT_POOLS_MAX: 100, CONNECTION_BUDGET: 60 }, async (app, silo) => {
      const probe = await probeOf(silo, pattern, single)
      // Each side lets go of its connections after its rounds (the server's slots are shared), so the bound is sampled after each pair.
      const churn = await compare(
        { ...articles(naive.url, pattern), ...(naive.reset === undefined ? {} : { reset: naive.reset }) },
        { ...articles(app.url, pattern), ...(app.reset === undefined ? {} : { reset: app.reset }) },
        { silo, probe, sampleEachRound: true })
      const judged = judgeBound(probe.figures({ siloOkPerS: churn.candidate.okPerS }), { budget: 60, peakBackends: churn.peakBackends, clean: clean(churn.candidate), aheadOfNaive: churn.ratio > 1 })
      record({ scenario: 'churn', figure: 'ratio to the bound', ...judged, detail: `uniform over ${size.tenants}, 100 pools, budget 60; Silo ${brief(churn.candidate)}, peak backends ${churn.peakBackends}; naive ${brief(churn.baseline)}, ratio to it ${churn.ratio.toFixed(3)}; ${judged.detail}` })
    })
  } finally {
    await naive.close()
  }
}

async function unknownHostsRow (): Promise<void> {
  await withSilo({}, async (app) => {
    // Both sides get fresh random hosts, so the load generator does the same work for each.
    const unknown = await compare({ url: app.url, path: '/ping', host: { kind: 'unknown' } }, articles(app.url, { kind: 'unknown' }), { pick: (r) => r.rps })
    record({ scenario: 'unknown hosts', figure: '404 rate / HTTP ceiling', value: unknown.ratio, target: '>= 0.8', met: unknown.ratio >= 0.8, detail: `${Math.round(unknown.candidate.rps)} 404/s against /ping ${Math.round(unknown.baseline.rps)} req/s, both with random hosts` })
  })
}

async function fleetMigrationRow (setup: Silo): Promise<void> {
  const fleet = await fleetMigration(setup, Array.from({ length: size.fleet }, (_, i) => slugOf(i)), 8)
  const per1000 = fleet.seconds * (1000 / fleet.tenants)
  record({
    scenario: 'fleet migration',
    figure: 's for 1,000 tenants',
    value: per1000,
    target: '< 30 s',
    met: per1000 < 30 && fleet.failed === 0,
    detail: `${fleet.tenants} tenants in ${fleet.seconds.toFixed(1)} s at concurrency 8, ${fleet.failed} not migrated; ${(fleet.seconds / fleet.floorSeconds).toFixed(2)}x the floor of one connection per tenant (${fleet.floorSeconds.toFixed(1)} s, ${Math.round(fleet.tenants / fleet.floorSeconds)} connections/s)${fleet.tenants === 1000 ? '' : '; scaled to 1,000'}`
  })
}

/** On a catalog of its own: a fleet of catalog rows only, no databases. */
async function fleetListRow (): Promise<void> {
  const list = await fleetList(benchEnv(), size.fleetList, log)
  const rss = list.cliPeakRssMb
  record({
    scenario: 'fleet list',
    figure: `ms for GET /tenants (first page) at ${list.tenants.toLocaleString('en')} tenants`,
    value: list.firstPageMs,
    target: '<= 50 ms, every tenant once, CLI peak RSS <= 200 MB',
    met: list.firstPageMs <= 50 && list.walkExact && list.cliTenants === list.tenants && (rss === null || rss <= 200),
    detail: `middle page ${list.middlePageMs.toFixed(1)} ms; every page (${list.pages} of 1000) ${list.walkSeconds.toFixed(2)} s${list.walkExact ? ', each tenant once in slug order' : ', NOT each tenant once'}; ` +
      `search of a domain substring ${list.searchMs.toFixed(1)} ms (${list.searchHits} found); the whole list in one query (the previous GET /tenants) ${list.listAllSeconds.toFixed(2)} s; ` +
      `tenants list --json ${list.cliSeconds.toFixed(2)} s, peak RSS ${rss === null ? 'unknown (no /usr/bin/time)' : `${rss.toFixed(0)} MB`}, ${list.cliTenants} in its array; ` +
      `${2 * list.tenants} domains; seeded in ${list.seedSeconds.toFixed(1)} s`
  })
}

/** wide and skewed spread over two servers, and creates placed over them, each against one server with the same total budget. */
async function serversRows (): Promise<void> {
  const spread = await spreadOverServers(env, {
    tenants: size.tenants,
    wideTenants: Math.min(100, size.tenants),
    creates: size.serverCreates,
    createConcurrency: 4,
    load: { rounds: size.rounds, connections: size.connections, durationS: size.durationS },
    startClients: 8,
    log
  })
  const peaks = (c: SpreadComparison): string => [...c.peakByServer].map(([name, peak]) => `${name} ${peak}`).join(', ')
  const withinBudget = (c: SpreadComparison): boolean => [...c.peakByServer.values()].every((peak) => peak <= c.budgetPerServer)
  const rate = (r: StartRate | undefined): string => r === undefined ? 'not measured' : `${Math.round(r.perS)}/s (connect ${r.connectMs.toFixed(1)} ms${r.failed > 0 ? `, ${r.failed} failed` : ''})`
  const { alone, together } = spread.startRate
  const starts = `backends started per second with 8 clients opening and closing connections: default ${rate(alone.get('default'))}, ${SECOND} ${rate(alone.get(SECOND))} alone; ` +
    `both at once ${rate(together.get('default'))} + ${rate(together.get(SECOND))} (one machine's cores shared)`
  const { wide, skewed, provision } = spread
  record({ scenario: 'servers', figure: 'wide over two servers, ratio to one', value: wide.ratio, target: '>= 0.90, each server <= its budget', met: wide.ratio >= 0.9 && withinBudget(wide), detail: `${Math.min(100, size.tenants)} tenants uniform; two servers, budget ${wide.budgetPerServer} each: ${brief(wide.candidate)}, peak backends ${peaks(wide)}; one server, budget ${2 * wide.budgetPerServer}: ${brief(wide.baseline)}; ${starts}; ${SECOND} is PostgreSQL ${spread.secondVersion} (embedded); load average ${spread.loadAverage.map((load) => load.toFixed(1)).join(' at the start, ')} at the end` })
  const clean = skewed.candidate.non2xx === 0 && skewed.candidate.errors === 0
  record({ scenario: 'servers', figure: 'skewed over two servers, ratio to one', value: skewed.ratio, target: '>= 0.90, 0 errors, each server <= its budget', met: skewed.ratio >= 0.9 && clean && withinBudget(skewed), detail: `Zipf(1.1) over ${size.tenants}, 50 pools; two servers, budget ${skewed.budgetPerServer} each: ${brief(skewed.candidate)}, peak backends ${peaks(skewed)}; one server, budget ${2 * skewed.budgetPerServer}: ${brief(skewed.baseline)}` })
  record({ scenario: 'servers', figure: 'creates per second over two servers, ratio to one', value: provision.ratio, target: '>= 0.90', met: provision.ratio >= 0.9, detail: `${provision.creates} POST /tenants 4 at once on each side, template clones without spares, in ${size.rounds} alternating rounds: ${provision.candidatePerS.toFixed(1)}/s over two servers (placed: ${[...provision.placed].map(([name, n]) => `${name} ${n}`).join(', ')}), ${provision.baselinePerS.toFixed(1)}/s on one` })
}

/** One tenant moved to a second server under a steady write load: the longest hold a writer saw, and the move's time against a plain copy. */
async function moveRow (): Promise<void> {
  const { articles, tableMb, move, totalMs, phases, floor, writes, secondVersion } = await moveUnderLoad({ articles: size.moveArticles, writers: 4, intervalMs: 8, settleMs: 1000, log })
  const errors = [...writes.errors].map(([key, n]) => `${n} ${key}`).join(', ')
  const clean = writes.errors.size === 0 && writes.lost === 0 && writes.duplicates === 0
  const copied = `${articles.toLocaleString('en')} articles (${tableMb.toFixed(1)} MB) from default (PostgreSQL 15) to ${SECOND} (embedded PostgreSQL ${secondVersion}) by a process of its own, as \`tenants move\``
  record({ scenario: 'move', figure: 'ms, longest hold a writer saw', value: writes.longestMs, target: '<= 500 ms, 0 errors, 0 lost writes', met: writes.longestMs <= 500 && clean, detail: `${copied}, 4 writers each POSTing at most every 8 ms; freeze ${move.freezeMs ?? 'none'} ms; the longest write began ${writes.longestAtMs.toFixed(0)} ms into the move (longest by phase begun in: ${writes.longestByPhase.map(([phase, ms]) => `${phase} ${ms.toFixed(0)}`).join(', ')} ms); ${writes.held} writes began during the freeze, the last answered ${writes.heldAnsweredAfterSwitchMs.toFixed(0)} ms after the switch; p99 during the move ${writes.p99Ms.toFixed(1)} ms over ${writes.duringMove} writes (before it p50 ${writes.beforeP50Ms.toFixed(1)}, p99 ${writes.beforeP99Ms.toFixed(1)}); ${writes.total} writes, errors: ${errors === '' ? 'none' : errors}; lost ${writes.lost}, twice ${writes.duplicates}${writes.unacknowledgedThere > 0 ? `; ${writes.unacknowledgedThere} refused writes at the destination` : ''}` })
  const ratio = totalMs / floor.totalMs
  record({ scenario: 'move', figure: 'total move time, ratio to template + COPY', value: ratio, target: 'reported (the plain copy is the floor)', met: move.phase === 'done', detail: `move ${(totalMs / 1000).toFixed(2)} s (${move.rowsCopied} rows copied, ${move.changesApplied} changes applied; ${phases.map((p) => `${p.phase} at ${p.atMs.toFixed(0)}`).join(', ')} ms); floor ${floor.totalMs.toFixed(0)} ms: CREATE DATABASE ... TEMPLATE ${floor.createMs.toFixed(0)} ms + COPY of ${floor.rows} rows ${floor.copyMs.toFixed(0)} ms, no load` })
}

try {
  // The article goes into the template first: spares cloned before it would lack it.
  const seeder = await benchSilo(env)
  await seedTemplate(seeder)
  await seeder.close()
  // Spares as a server keeps them by default (TENANT_SPARES=2, growing up to TENANT_SPARES_MAX=16 under the creates), made before the first create.
  const setup = await benchSilo(env, { TENANT_SPARES: 2, TENANT_SPARES_MAX: 16 })
  try {
    await setup.spares?.settled()
    if (needsTenants) {
      log(`provisioning ${size.tenants} tenants (catalog ${env.catalogDatabase})`)
      const provisioning = await provisionTenants(setup, { count: size.tenants, timed: wanted('provision') ? size.timedCreates : 0, log })
      await setup.spares?.settled()
      if (wanted('provision')) await provisionRow(provisioning)
    }
    if (['hot', 'hot instructions', 'cold instructions', 'wide', 'skewed', 'churn'].some((row) => wanted(row as Scenario))) await singleDatabaseRows(setup)
    if (wanted('unknown hosts')) await unknownHostsRow()
    if (wanted('leavers')) record({ scenario: 'leavers', ...await leaversRow(env, size) })
    if (wanted('cold')) record({ scenario: 'cold', ...await coldRow(env, setup, size.coldSamples) })
    if (wanted('memory')) record({ scenario: 'memory', ...await memoryRow(env, size.tenants) })
    if (wanted('fleet migration')) await fleetMigrationRow(setup)
    if (wanted('servers')) await serversRows()
  } finally {
    await setup.close()
  }
  if (wanted('fleet list')) await fleetListRow()
  if (wanted('move')) await moveRow()
} finally {
  log('cleaning up')
  await cleanup(env)
}

const format = (row: Row): string => `| ${row.scenario} | ${row.figure} | ${row.value.toFixed(3)} | ${row.target} | ${row.met ? 'yes' : '**no**'} | ${row.detail} |`
console.log(`\n## Silo benchmark (${quick ? 'quick' : 'full'}) — ${new Date().toISOString()}, load average ${loadAtStart.toFixed(1)} at the start, ${(loadavg()[0] ?? NaN).toFixed(1)} at the end\n`)
console.log('| scenario | figure | value | target | met | detail |\n| --- | --- | --- | --- | --- | --- |')
for (const row of rows) console.log(format(row))
console.log('\n```json\n' + JSON.stringify({ mode: quick ? 'quick' : 'full', rows }, null, 2) + '\n```')
