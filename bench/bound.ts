/**
 * The physical bound of the pressured scenarios (`wide`, `skewed`, `churn`; issue 14). A
 * connection belongs to one database, so a request for a tenant with no open connection needs a
 * new backend whatever the design: a request costs at least a warm request, and a miss a backend
 * start besides. The bound is `1 / (1/R_single + m* / R_start)`, where
 * - `R_single` is the single-database app's rate at the scenario's concurrency (a warm request);
 * - `R_start` is the rate of connect + first query + close against the scenario's tenant
 *   databases in turn, as their own roles with their own credentials, no HTTP, as many at once
 *   as the load has connections, measured in the same run (see `sample`);
 * - `m*` is the lowest miss ratio an online policy reaches on the scenario's request pattern with
 *   C = min(pools, connection budget) tenants connected: it keeps the C likeliest tenants.
 */
import { loadavg } from 'node:os'
import { tenantConnection } from '../src/catalog/tenant-connection.js'
import type { Silo } from '../src/silo.js'
import { backendStartRate, type StartRate } from './backend-start.js'
import { slugOf, zipfWeights, type HostSpec } from './hosts.js'
import { median, type LoadResult } from './load.js'

/** A request pattern over the bench's tenants t00000…: uniform, or Zipf with rank 0 the hottest. */
export type TenantPattern = Extract<HostSpec, { n: number }>

/** What GET /articles/:id runs on a tenant's connection (knex's `.first()`), as an extended-protocol query. */
const FIRST_QUERY = { text: 'select * from "articles" where "id" = $1 limit $2', values: ['1', 1] }

/**
 * The lowest long-run miss ratio of any online policy keeping `cached` tenants connected, when
 * each request picks its tenant independently by `pattern` (the load generator's own weights):
 * keep the `cached` likeliest, miss on the rest.
 */
export function optimalMissRatio (pattern: TenantPattern, cached: number): number {
  if (pattern.kind === 'uniform') return Math.max(0, 1 - cached / pattern.n)
  let total = 0
  let kept = 0
  // Weights fall with rank: the first `cached` are the likeliest.
  zipfWeights(pattern.n, pattern.s).forEach((weight, rank) => {
    total += weight
    if (rank < cached) kept += weight
  })
  return 1 - kept / total
}

export interface BoundFigures {
  /** The single-database app's 2xx per second (median round). */
  rSingle: number
  /** Connect + first query + close per second (median sample). */
  rStart: number
  /** The lowest and highest start samples, per second, and how many were taken: how much the server's start rate wandered over the row. */
  startRange: [number, number]
  startSamples: number
  /** Median connect time of the start samples, ms. */
  startConnectMs: number
  startFailed: number
  /** Loops opening connections at once in the start samples. */
  startClients: number
  /** Tenants that can hold a connection: min(pools, connection budget). */
  cached: number
  mStar: number
  /** 1 / (1/rSingle + mStar/rStart), requests per second. */
  bound: number
  /** Silo's 2xx per second (median round) over the bound. */
  ratio: number
  /** Connections Silo opened over the requests it took (tenant resolved), over its timed rounds. */
  missRatio: number
  opened: number
  requests: number
  /** Connections Silo opened per second of its rounds: above rStart, the start samples caught the machine slower than the rounds did. */
  openedPerS: number
  /**
   * CPU of Silo's process (this one: the load generator runs in its own) over its rounds, per
   * request it took, µs; and as a share of one core. Silo, the server's backends and the load
   * generator share the machine's cores: what Silo spends per miss is CPU the backend starts lack.
   */
  cpuPerRequestUs: number
  cpuShare: number
  /** The machine's 1-minute load average when the probe was made and when the figures were taken. */
  loadAverage: [number, number]
}

export interface BoundProbe {
  /**
   * Wraps one of Silo's rounds: counts the connections it opens and the requests it takes, both
   * in Silo (the load generator does not count the requests still under way when it stops).
   */
  count: (round: () => Promise<LoadResult>) => Promise<LoadResult>
  /** An R_start sample (and an R_single one, when the probe runs the single app), taken with Silo's connections let go. */
  sample: () => Promise<void>
  /**
   * Silo's `rounds`, its connections kept from round to round as a serving instance keeps them,
   * with two samples before the first and two after the last, once `release` has let Silo's
   * connections go (they and the sample's would not fit the server's max_connections together).
   * Four, not two: the median of two is their mean, and one sample that caught the server slow
   * pulled the bound down with it (once under what Silo served).
   */
  bracket: <T>(rounds: () => Promise<T>, release: () => Promise<void>) => Promise<T>
  figures: (measured: { siloOkPerS: number, rSingle?: number }) => BoundFigures
}

/**
 * A probe of the bound for a load of `pattern` on `silo` (its pool count and budget give C).
 * `single` runs one round of the single-database app, for scenarios whose baseline is another.
 */
export async function boundProbe (
  silo: Silo,
  options: { pattern: TenantPattern, clients: number, durationS: number, single?: () => Promise<LoadResult> }
): Promise<BoundProbe> {
  const loadAtStart = loadavg()[0] ?? NaN
  const slugs = Array.from({ length: options.pattern.n }, (_, i) => slugOf(i))
  const records = await silo.catalog.tenantsBySlugs(slugs)
  const targets = slugs.flatMap((slug) => {
    const tenant = records.get(slug)
    return tenant === undefined ? [] : [tenantConnection(tenant, 'silo-bench-start')]
  })
  const starts: StartRate[] = []
  const singles: number[] = []
  let opened = 0
  let requests = 0
  let countedS = 0
  let cpuUs = 0
  const onOpened = (): void => { opened++ }
  const onRequest = ({ outcome }: { outcome: string }): void => { if (outcome === 'served') requests++ }
  const sample = async (): Promise<void> => {
    if (options.single !== undefined) singles.push((await options.single()).okPerS)
    starts.push(await backendStartRate(targets, { clients: options.clients, durationS: options.durationS, query: FIRST_QUERY }))
  }
  return {
    count: async (round) => {
      silo.events.on('connection:opened', onOpened)
      silo.events.on('request:tenant', onRequest)
      const cpuBefore = process.cpuUsage()
      try {
        const result = await round()
        // Requests still under way when the load stopped may yet open a connection.
        for (let waited = 0; silo.pools.stats().leases > 0 && waited < 10000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10))
        return result
      } finally {
        silo.events.off('connection:opened', onOpened)
        silo.events.off('request:tenant', onRequest)
        const cpu = process.cpuUsage(cpuBefore)
        cpuUs += cpu.user + cpu.system
        // The load's own duration: the round also starts the load generator's process.
        countedS += options.durationS
      }
    },
    sample,
    bracket: async (rounds, release) => {
      await sample()
      await sample()
      const value = await rounds()
      await release()
      await sample()
      await sample()
      return value
    },
    figures: ({ siloOkPerS, rSingle = median(singles) }) => {
      const rStart = median(starts.map((start) => start.perS))
      const cached = Math.min(silo.config.tenantPoolsMax, silo.config.connectionBudget)
      const mStar = optimalMissRatio(options.pattern, cached)
      const bound = 1 / (1 / rSingle + mStar / rStart)
      return {
        rSingle,
        rStart,
        startRange: [Math.min(...starts.map((start) => start.perS)), Math.max(...starts.map((start) => start.perS))],
        startSamples: starts.length,
        startConnectMs: median(starts.map((start) => start.connectMs)),
        startFailed: starts.reduce((total, start) => total + start.failed, 0),
        startClients: options.clients,
        cached,
        mStar,
        bound,
        ratio: siloOkPerS / bound,
        missRatio: opened / Math.max(1, requests),
        opened,
        requests,
        openedPerS: opened / Math.max(1e-9, countedS),
        cpuPerRequestUs: cpuUs / Math.max(1, requests),
        cpuShare: cpuUs / 1e6 / Math.max(1e-9, countedS),
        loadAverage: [loadAtStart, loadavg()[0] ?? NaN]
      }
    }
  }
}

/** A pressured row's value, target, verdict and the bound's part of its detail. */
export function judgeBound (
  figures: BoundFigures,
  options: { budget: number, peakBackends: number, clean: boolean, aheadOfNaive?: boolean }
): { value: number, target: string, met: boolean, detail: string } {
  const f = figures
  const failed = f.startFailed > 0 ? `, ${f.startFailed} failed` : ''
  return {
    value: f.ratio,
    target: `>= 0.8 of the bound, 0 errors, backends <= ${options.budget}${options.aheadOfNaive === undefined ? '' : ', ahead of the naive peer'}`,
    met: f.ratio >= 0.8 && options.clean && options.peakBackends <= options.budget && options.aheadOfNaive !== false,
    detail: `bound ${Math.round(f.bound)} ok/s = 1 / (1/R_single + m*/R_start): R_single ${Math.round(f.rSingle)} ok/s, ` +
      `R_start ${Math.round(f.rStart)}/s (${f.startSamples === 1 ? 'one sample' : `median of ${f.startSamples} samples, ${f.startRange.map(Math.round).join('-')}/s`}; connect + first query + close, ${f.startClients} at once, tenant roles, connect median ${f.startConnectMs.toFixed(1)} ms${failed}), ` +
      `m* ${f.mStar.toFixed(3)} (C = ${f.cached}); Silo's miss ratio ${f.missRatio.toFixed(3)} (${f.opened} connections opened for ${f.requests} requests, ${Math.round(f.openedPerS)} a second); ` +
      `Silo's process ${Math.round(f.cpuPerRequestUs)} µs of CPU a request, ${(100 * f.cpuShare).toFixed(0)}% of a core; ` +
      `load average ${f.loadAverage.map((load) => load.toFixed(1)).join(' at the start, ')} at the end`
  }
}
