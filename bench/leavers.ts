import { siloApp, type Listening } from './apps.js'
import { benchScript } from './bench-files.js'
import { benchSilo, type BenchEnv } from './fixtures.js'
import { hostOf } from './hosts.js'
import type { LeaverMessage, LeaverOptions } from './leaver-clients.js'
import { brief, load, median, type LoadResult } from './load.js'
import type { RowFigures } from './scenarios.js'
import { startWorker } from './worker-process.js'
import type { Silo } from '../src/silo.js'

export interface LeaversOptions {
  tenants: number
  rounds: number
  durationS: number
  connections: number
  /** Clients that give up, sending all the while the live load runs. */
  leavers: number
  /** TENANT_POOL_MAX of both instances. */
  poolMax: number
}

export interface LeaversSide {
  /** The live clients' figures (median round by 2xx per second; errors and non-2xx summed). */
  live: LoadResult
  /** Requests of the clients that gave up, per second. */
  leftPerS: number
  /** Times the instance's pools grew, over all its rounds. */
  grown: number
  /** Connections it opened, over all its rounds. */
  opened: number
}

export interface LeaversFigures {
  /** TENANT_REQUESTS_MAX as shipped: requests past it wait their turn and leave with their clients. */
  queued: LeaversSide
  /** TENANT_REQUESTS_MAX=0: every request goes onto its pool at once (as before the setting). */
  unlimited: LeaversSide
  /** Live 2xx per second, queued over unlimited. */
  ratio: number
}

const leaverScript = benchScript('leaver-clients')

/** Runs `fn` while a process of clients that give up sends requests to `port`; resolves with fn's value and the requests they sent. */
async function withLeavers<T> (options: LeaverOptions, fn: () => Promise<T>): Promise<{ value: T, sent: number }> {
  const leavers = startWorker<Extract<LeaverMessage, { type: 'result' }>>(leaverScript, options, 'leaving clients')
  await leavers.started
  let value: T
  try {
    value = await fn()
  } catch (error) {
    await leavers.stop().catch(() => {})
    throw error
  }
  return { value, sent: (await leavers.stop()).sent }
}

/** Until the requests of clients that left are done (their work drains): the next round starts even. */
async function drained (silo: Silo): Promise<void> {
  const deadline = Date.now() + 120000
  while (Date.now() < deadline) {
    const { leases, waiting } = silo.pools.stats()
    if (leases === 0 && waiting === 0) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * The live clients' rate while clients that give up after a few milliseconds and retry flood the
 * same tenants, in alternating rounds against two instances: one as shipped (a request past
 * TENANT_REQUESTS_MAX waits its turn and leaves with its client) and one with
 * TENANT_REQUESTS_MAX=0 (every request goes onto its pool's own queue, where a request whose
 * client left still runs when its turn comes). A pool small for its load (`poolMax`) makes the
 * queue form; where the pools keep up, nothing waits its turn and the two answer alike.
 */
export async function liveUnderLeavers (env: BenchEnv, options: LeaversOptions): Promise<LeaversFigures> {
  const settings = { TENANT_POOL_MAX: options.poolMax, CONNECTION_BUDGET: options.poolMax * options.tenants }
  const sides: Array<{ silo: Silo, app: Listening, rounds: LoadResult[], left: number[], opened: number }> = []
  try {
    for (const overrides of [{ ...settings }, { ...settings, TENANT_REQUESTS_MAX: 0 }]) {
      const silo = await benchSilo(env, overrides)
      const side = { silo, app: await siloApp(silo), rounds: [], left: [], opened: 0 }
      silo.events.on('connection:opened', () => { side.opened++ })
      sides.push(side)
    }
    const hosts = Array.from({ length: options.tenants }, (_, i) => hostOf(i))
    for (let round = 0; round < options.rounds; round++) {
      // ABBA: neither side always follows the other (whose dead work, say, may still be draining from the server).
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
        const port = Number(new URL(side.app.url).port)
        const leavers: LeaverOptions = { port, hosts, path: '/articles?limit=100', clients: options.leavers, patienceMs: 5 }
        const { value, sent } = await withLeavers(leavers, async () => await load({
          url: side.app.url, path: '/articles/1', host: { kind: 'uniform', n: options.tenants }, connections: options.connections, durationS: options.durationS
        }))
        side.rounds.push(value)
        side.left.push(sent / options.durationS)
        await drained(side.silo)
      }
    }
  } finally {
    for (const { app, silo } of sides) {
      await app.close()
      await silo.close()
    }
  }
  const summary = ({ rounds, left, opened, silo }: typeof sides[number]): LeaversSide => {
    const rate = median(rounds.map((r) => r.okPerS))
    const middle = rounds.find((r) => r.okPerS === rate) ?? rounds[0] as LoadResult
    return {
      live: { ...middle, errors: rounds.reduce((n, r) => n + r.errors, 0), non2xx: rounds.reduce((n, r) => n + r.non2xx, 0) },
      leftPerS: median(left),
      grown: silo.pools.stats().grown,
      opened
    }
  }
  const [queued, unlimited] = sides.map(summary) as [LeaversSide, LeaversSide]
  return { queued, unlimited, ratio: queued.live.okPerS / Math.max(1e-9, unlimited.live.okPerS) }
}

/** The bench's `leavers` row: one tenant, TENANT_POOL_MAX=2 (so 16 requests at once), 16 clients that give up, at the run's size. */
export async function leaversRow (env: BenchEnv, size: { rounds: number, durationS: number, connections: number }): Promise<RowFigures> {
  const figures = await liveUnderLeavers(env, { tenants: 1, rounds: size.rounds, durationS: size.durationS, connections: size.connections, leavers: 16, poolMax: 2 })
  const side = (s: LeaversSide): string => `${brief(s.live)}, the leaving clients ${Math.round(s.leftPerS)} requests/s, ${s.opened} connections opened`
  return {
    figure: 'live 2xx/s, ratio to TENANT_REQUESTS_MAX=0',
    value: figures.ratio,
    target: 'reported; 0 errors for the live clients',
    met: figures.queued.live.errors === 0,
    detail: `one tenant, TENANT_POOL_MAX=2 (so 16 requests at once), ${size.connections} live clients (GET /articles/1) beside 16 that send GET /articles?limit=100 and close their connection within 5 ms, again and again; as shipped: ${side(figures.queued)}; TENANT_REQUESTS_MAX=0: ${side(figures.unlimited)}`
  }
}
