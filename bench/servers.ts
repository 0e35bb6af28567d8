import { loadavg } from 'node:os'
import { tenantConnection } from '../src/catalog/tenant-connection.js'
import type { Silo } from '../src/silo.js'
import { startEmbeddedServer } from '../src/testing/embedded-server.js'
import { siloApp, type Listening } from './apps.js'
import { backendStartRate, type StartRate } from './backend-start.js'
import { alternate, type Comparison, type Side } from './compare.js'
import { benchEnv, benchSilo, cleanup, createAll, provisionTenants, seedServerTemplate, seedTemplate, tenantCreator, withBackendSampler, type BenchEnv } from './fixtures.js'
import { slugOf, type HostSpec } from './hosts.js'
import { median } from './load.js'

/** The second server's name in the bench's catalogs. */
export const SECOND = 'second'

export interface ServersOptions {
  /** Tenants of the skewed load (Zipf over them), on each side. */
  tenants: number
  /** Tenants of the wide load (uniform over them), on each side. */
  wideTenants: number
  /** Creates on each side, over all rounds, for the provisioning comparison. */
  creates: number
  /** Creates at once, on each side. */
  createConcurrency: number
  load: { rounds: number, connections: number, durationS: number }
  /** Loops opening connections at once, per server, for the backend start rate. */
  startClients: number
  log: (line: string) => void
}

export interface SpreadComparison extends Comparison {
  /** Highest sum over both servers of the candidate's tenant backends at one sample. */
  peakBackends: number
  peakByServer: Map<string, number>
  /** Each server's budget on the candidate side (the baseline's server has twice that). */
  budgetPerServer: number
}

export interface ServersFigures {
  wide: SpreadComparison
  skewed: SpreadComparison
  provision: {
    /** Median creates per second of the rounds over two servers, over that of the rounds on one. */
    ratio: number
    baselinePerS: number
    candidatePerS: number
    creates: number
    /** Where the candidate's creates went: tenants per server at the end of its rounds. */
    placed: Map<string, number>
  }
  /** Backends started per second, each server alone, then both at once. */
  startRate: { alone: Map<string, StartRate>, together: Map<string, StartRate> }
  secondVersion: string
  /** The machine's 1-minute load average when the row started and when it ended (others' work shows here). */
  loadAverage: [number, number]
}

/**
 * The `servers` row: what spreading tenants over two servers costs, against one server with the
 * same total budget. The candidate catalogs register a second PostgreSQL (an embedded one this
 * function starts, on another port, in a temporary directory) beside `default`, and their tenants
 * are placed over both; the baseline is the bench's own catalog (`base`), every tenant on
 * `default`. Both servers share the machine, so this measures the machinery, not a second
 * machine's gain. Everything made on either server is dropped, and the second server removed.
 */
export async function spreadOverServers (base: BenchEnv, options: ServersOptions): Promise<ServersFigures> {
  const { log } = options
  const loadAtStart = loadavg()[0] ?? NaN
  const second = await startEmbeddedServer({ dirPrefix: 'silo-bench-pg-' })
  // A catalog per budget: a registered server's budget is set once, by `servers add --budget`.
  const wideEnv = benchEnv()
  const skewedEnv = benchEnv()
  const removeAll = async (): Promise<unknown[]> => {
    log('  servers: dropping both catalogs and their tenants on both servers, removing the second server')
    const errors: unknown[] = []
    for (const env of [wideEnv, skewedEnv]) {
      await cleanup(env).catch((error: unknown) => { errors.push(error) })
      await cleanup(env, second.url).catch((error: unknown) => { errors.push(error) })
    }
    await second.destroy().catch((error: unknown) => { errors.push(error) })
    for (const error of errors) log(`  servers: could not remove: ${(error as Error).message}`)
    return errors
  }
  let figures: ServersFigures
  try {
    log(`servers: a second PostgreSQL on port ${second.port}; catalogs ${wideEnv.catalogDatabase} (wide), ${skewedEnv.catalogDatabase} (skewed)`)
    const secondVersion = await addSecondServer(wideEnv, second.url, 25)
    await addSecondServer(skewedEnv, second.url, 30)

    const provision = await provisioningRounds(base, skewedEnv, options)
    log(`  servers: creates ${provision.candidatePerS.toFixed(1)}/s over two servers, ${provision.baselinePerS.toFixed(1)}/s on one; provisioning the rest`)
    await provisionAll(skewedEnv, options.tenants, log)
    await provisionAll(wideEnv, options.wideTenants, log)

    const startRate = await startRates(skewedEnv, options)
    const wide = await spreadLoad(base, wideEnv, { budget: 50, overrides: {}, host: { kind: 'uniform', n: options.wideTenants } }, options)
    log(`  servers: wide ${wide.ratio.toFixed(3)} of one server`)
    const skewed = await spreadLoad(base, skewedEnv, { budget: 60, overrides: { TENANT_POOLS_MAX: 50 }, host: { kind: 'zipf', n: options.tenants, s: 1.1 } }, options)
    log(`  servers: skewed ${skewed.ratio.toFixed(3)} of one server`)
    figures = { wide, skewed, provision, startRate, secondVersion, loadAverage: [loadAtStart, loadavg()[0] ?? NaN] }
  } catch (error) {
    // The failure is what the run reports; what could not be removed is logged.
    await removeAll()
    throw error
  }
  const errors = await removeAll()
  if (errors.length > 0) throw new AggregateError(errors, 'the servers row could not remove everything it made')
  return figures
}

/** A catalog whose template carries the bench article on both servers, the second registered with `budget`; its PostgreSQL version. */
async function addSecondServer (env: BenchEnv, url: string, budget: number): Promise<string> {
  const silo = await benchSilo(env)
  try {
    await seedTemplate(silo)
    const record = await silo.serverRegistry.add({ name: SECOND, url, connectionBudget: budget })
    await seedServerTemplate(await silo.servers.byName(SECOND))
    return record.serverVersion ?? 'unknown'
  } finally {
    await silo.close()
  }
}

/**
 * Creates per second, `createConcurrency` at once, in alternating rounds: on the bench catalog
 * (one server; slugs s00000…, dropped with it) and on `spread` (placed over two servers; its
 * first tenants). Both clone from a template, without spares: each create does its server's work.
 */
async function provisioningRounds (base: BenchEnv, spread: BenchEnv, options: ServersOptions): Promise<ServersFigures['provision']> {
  const one = await benchSilo(base)
  const two = await benchSilo(spread)
  const onOne = await tenantCreator(one)
  const onTwo = await tenantCreator(two)
  try {
    const extra = (i: number): string => `s${String(i).padStart(5, '0')}`
    // Warm-up: the first create on each server opens its admin pool there.
    await createAll(onOne, [extra(0), extra(1)], 1)
    await createAll(onTwo, [slugOf(0), slugOf(1)], 1)
    const perRound = Math.max(1, Math.ceil(options.creates / options.load.rounds))
    const rates: { one: number[], two: number[] } = { one: [], two: [] }
    const timed = async (creator: typeof onOne, slugs: string[]): Promise<number> => {
      const t0 = performance.now()
      await createAll(creator, slugs, options.createConcurrency)
      return slugs.length / ((performance.now() - t0) / 1000)
    }
    for (let round = 0; round < options.load.rounds; round++) {
      const slugs = Array.from({ length: perRound }, (_, i) => 2 + round * perRound + i)
      rates.one.push(await timed(onOne, slugs.map(extra)))
      rates.two.push(await timed(onTwo, slugs.map(slugOf)))
    }
    const placed = new Map((await two.catalog.servers.list()).map((server) => [server.name, server.tenants]))
    const baselinePerS = median(rates.one)
    const candidatePerS = median(rates.two)
    return { ratio: candidatePerS / baselinePerS, baselinePerS, candidatePerS, creates: perRound * options.load.rounds, placed }
  } finally {
    await onOne.close()
    await onTwo.close()
    await one.close()
    await two.close()
  }
}

async function provisionAll (env: BenchEnv, count: number, log: (line: string) => void): Promise<void> {
  const silo = await benchSilo(env)
  try {
    await provisionTenants(silo, { count, timed: 0, log })
  } finally {
    await silo.close()
  }
}

/** Each server's backend start rate, alone and then with the other starting backends at the same time. */
async function startRates (env: BenchEnv, options: ServersOptions): Promise<ServersFigures['startRate']> {
  const silo = await benchSilo(env)
  try {
    const tenants = await silo.catalog.tenantsBySlugs(Array.from({ length: Math.min(options.tenants, 200) }, (_, i) => slugOf(i)))
    const targets = new Map<string, ReturnType<typeof tenantConnection>[]>()
    for (const tenant of tenants.values()) targets.set(tenant.server.name, [...(targets.get(tenant.server.name) ?? []), tenantConnection(tenant, 'silo-bench-start')])
    const run = async (name: string): Promise<[string, StartRate]> =>
      [name, await backendStartRate(targets.get(name) ?? [], { clients: options.startClients, durationS: options.load.durationS })]
    const alone = new Map<string, StartRate>()
    for (const name of targets.keys()) alone.set(...await run(name))
    const together = new Map(await Promise.all([...targets.keys()].map(run)))
    return { alone, together }
  } finally {
    await silo.close()
  }
}

/**
 * The same load on the bench catalog's Silo (one server, budget `budget`) and on `spread`'s
 * (two servers, `budget / 2` each: `default` by CONNECTION_BUDGET, the second by its registered
 * budget), alternating rounds; each side lets its connections go after its rounds.
 */
async function spreadLoad (
  base: BenchEnv,
  spread: BenchEnv,
  scenario: { budget: number, overrides: Record<string, number>, host: HostSpec },
  options: ServersOptions
): Promise<SpreadComparison> {
  const opened: Array<{ silo: Silo, app: Listening }> = []
  const open = async (env: BenchEnv, budget: number): Promise<{ silo: Silo, side: Side }> => {
    const silo = await benchSilo(env, { ...scenario.overrides, CONNECTION_BUDGET: budget })
    const app = await siloApp(silo)
    opened.push({ silo, app })
    return { silo, side: { url: app.url, path: '/articles/1', host: scenario.host, ...(app.reset === undefined ? {} : { reset: app.reset }) } }
  }
  try {
    const one = await open(base, scenario.budget)
    const two = await open(spread, scenario.budget / 2)
    let peakBackends = 0
    const peakByServer = new Map<string, number>()
    const result = await alternate(one.side, two.side, {
      ...options.load,
      during: async (fn) => {
        const sampled = await withBackendSampler(two.silo, fn)
        peakBackends = Math.max(peakBackends, sampled.peakBackends)
        for (const [name, peak] of sampled.peakByServer) peakByServer.set(name, Math.max(peakByServer.get(name) ?? 0, peak))
        return sampled.value
      }
    })
    return { ...result, peakBackends, peakByServer, budgetPerServer: scenario.budget / 2 }
  } finally {
    for (const { silo, app } of opened.reverse()) {
      await app.close()
      await silo.close()
    }
  }
}
