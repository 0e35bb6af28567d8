/**
 * The `hot instructions` row: what a warm tenant request costs Silo's process in CPU, counted in
 * instructions, against the single-database app. On this kind of machine a request's CPU time
 * wanders by a third from minute to minute (and the `hot` row's rate with it); callgrind counts
 * the instructions a process executes, which do not depend on what else the machine does. Each
 * server runs under callgrind in a process of its own (both at once), is warmed up with requests
 * one at a time over a kept-alive connection, then its counts are zeroed, `requests` more are
 * sent and its counts dumped. Only the main thread's (the event loop's) are read: V8 compiles
 * hot functions on threads of its own, late under callgrind's slowness, and that work is not a
 * request's. One request at a time, so each request pays for its own turn of the event loop on
 * both sides (under load both batch several a turn).
 */
import { execFile, spawnSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { PgConnection } from '../src/db/knex-config.js'
import { benchScript } from './bench-files.js'
import type { BenchEnv } from './fixtures.js'
import { hostOf } from './hosts.js'
import type { InstructionServerMessage, InstructionServerOptions } from './instruction-server.js'
import type { RowFigures } from './scenarios.js'
import { startWorker } from './worker-process.js'

export interface InstructionOptions {
  /** Requests before the count starts (V8 has optimized the request path by then). */
  warmup: number
  /** Requests counted. */
  requests: number
  /** Silo's requests go to this many of the bench's tenants in turn. */
  tenants: number
}

/** One side's count. */
export interface SideInstructions {
  /** Instructions of the main thread per request, its background work over the same time taken out. */
  perRequest: number
  /** What the main thread did with no request to serve, per second (timers: the catalog feed's, the pools'...), counted over as long as the requests took. */
  idlePerS: number
}

export interface InstructionFigures {
  silo: SideInstructions
  single: SideInstructions
  /** single ÷ silo: the rate Silo would reach of the single app's if CPU were all that counted. */
  ratio: number
}

const serverScript = benchScript('instruction-server')
const run = promisify(execFile)

/** Whether valgrind's callgrind can run here (it is not one of Silo's dependencies; Debian's `valgrind` package). */
export function callgrindAvailable (): boolean {
  return spawnSync('valgrind', ['--version']).status === 0 && spawnSync('callgrind_control', ['-h']).status === 0
}

async function get (agent: Agent, url: string, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    request(`${url}/articles/1`, { agent, headers: { host } }, (res) => {
      res.resume()
      res.on('end', () => { res.statusCode === 200 ? resolve() : reject(new Error(`GET /articles/1 on ${host}: ${String(res.statusCode)}`)) })
    }).on('error', reject).end()
  })
}

async function send (agent: Agent, url: string, hosts: readonly string[], count: number): Promise<void> {
  for (let i = 0; i < count; i++) await get(agent, url, hosts[i % hosts.length] as string)
}

/** The main thread's instruction total in dump `n` callgrind wrote for `pid` (`<prefix>.<pid>.<n>-01`). */
async function mainThreadInstructions (dir: string, prefix: string, pid: number, n: number): Promise<number> {
  const deadline = Date.now() + 60000
  for (;;) {
    const file = (await readdir(dir)).find((name) => name === `${prefix}.${pid}.${n}-01`)
    const total = file === undefined ? undefined : /^(?:summary|totals): (\d+)$/m.exec(await readFile(join(dir, file), 'utf8'))?.[1]
    if (total !== undefined) return Number(total)
    if (Date.now() > deadline) throw new Error(`callgrind wrote no dump for ${prefix} (${dir})`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/**
 * Instructions per request of one side's main thread. Under callgrind a request takes some fifty
 * times as long as it does natively, so what the process does by the clock (its timers) would
 * weigh fifty times too much per request: it is counted as long again with no request, and
 * taken out. Silo's sides get requests for `options.tenants` tenants in turn, the single app for
 * its one database, `connect` its loop of raw connects (told over IPC).
 */
async function count (side: InstructionServerOptions['side'], server: Omit<InstructionServerOptions, 'side' | 'tenants'>, options: InstructionOptions, dir: string): Promise<SideInstructions> {
  const callgrind = ['valgrind', '--tool=callgrind', '--separate-threads=yes', '--smc-check=all-non-file', `--log-file=${join(dir, side)}.log`, `--callgrind-out-file=${join(dir, side)}.%p`]
  const worker = startWorker<Extract<InstructionServerMessage, { type: 'result' }>, Extract<InstructionServerMessage, { type: 'started' }>>(serverScript, { ...server, side, tenants: options.tenants }, `${side} server`, callgrind)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    const { url } = await worker.started
    const pid = worker.pid as number
    const hosts = side === 'single' ? ['single.bench'] : Array.from({ length: options.tenants }, (_, i) => hostOf(i))
    const drive = side === 'connect'
      ? async (count: number) => { await worker.ask({ type: 'loop', count }, 'looped') }
      : async (count: number) => { await send(agent, url, hosts, count) }
    await drive(options.warmup)
    await run('callgrind_control', ['-z', String(pid)])
    const started = performance.now()
    await drive(options.requests)
    const elapsedMs = performance.now() - started
    await run('callgrind_control', ['-d', String(pid)])
    const busy = await mainThreadInstructions(dir, side, pid, 1)
    await run('callgrind_control', ['-z', String(pid)])
    await new Promise((resolve) => setTimeout(resolve, elapsedMs))
    await run('callgrind_control', ['-d', String(pid)])
    const idle = await mainThreadInstructions(dir, side, pid, 2)
    return { perRequest: (busy - idle) / options.requests, idlePerS: idle / (elapsedMs / 1000) }
  } finally {
    agent.destroy()
    await worker.stop()
  }
}

/** Each side's count, all under callgrind at once, their dumps in a directory removed afterwards. */
async function countAll (sides: Array<InstructionServerOptions['side']>, server: Omit<InstructionServerOptions, 'side' | 'tenants'>, options: InstructionOptions): Promise<SideInstructions[]> {
  const dir = await mkdtemp(join(tmpdir(), 'silo-bench-callgrind-'))
  try {
    return await Promise.all(sides.map(async (side) => await count(side, server, options, dir)))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Silo's and the single-database app's instructions per warm request, each under callgrind, both at once. */
export async function hotInstructions (env: BenchEnv, single: PgConnection, options: InstructionOptions): Promise<InstructionFigures> {
  const [silo, alone] = await countAll(['silo', 'single'], { env, single }, options) as [SideInstructions, SideInstructions]
  return { silo, single: alone, ratio: alone.perRequest / silo.perRequest }
}

/** What a miss costs Silo's main thread, and what a raw connect + the same query costs a process. */
export interface MissInstructionFigures {
  /** A request whose tenant has no pool: the pool made, its connection opened, the query, another pool pushed out and closed. */
  miss: SideInstructions
  /** A warm request of the single-database app (the same route on an open connection). */
  warm: SideInstructions
  /** A raw `pg` connect + the route's query + close, as the tenant's role. */
  connect: SideInstructions
  /** What Silo spends on a miss beyond a warm request and a raw connect: miss - warm - connect. */
  overhead: number
}

/** Misses (tenants in turn over a tenth as many pools) against a warm request plus a raw connect, each under callgrind, all at once. */
export async function missInstructions (env: BenchEnv, single: PgConnection, options: InstructionOptions): Promise<MissInstructionFigures> {
  const [miss, warm, connect] = await countAll(['silo-miss', 'single', 'connect'], { env, single }, options) as [SideInstructions, SideInstructions, SideInstructions]
  return { miss, warm, connect, overhead: miss.perRequest - warm.perRequest - connect.perRequest }
}

const k = (n: number): string => `${(n / 1000).toFixed(1)}k`
const notMeasured = 'not measured: valgrind (callgrind) is not installed (`apt-get install valgrind`)'

/** The `cold instructions` row: a miss's instructions over a warm request's plus a raw connect's. */
export async function missInstructionsRow (env: BenchEnv, single: PgConnection, options: InstructionOptions): Promise<RowFigures> {
  const figure = 'Silo\'s miss / (warm request + raw connect), instructions'
  const target = 'reported (1.0: a miss costs nothing beyond the connect)'
  if (!callgrindAvailable()) return { figure, value: NaN, target, met: true, detail: notMeasured }
  const f = await missInstructions(env, single, options)
  return {
    figure,
    value: f.miss.perRequest / (f.warm.perRequest + f.connect.perRequest),
    target,
    met: true,
    detail: `main thread, ${options.requests} requests one at a time after ${options.warmup}, ${options.tenants} tenants in turn over ${Math.max(1, Math.floor(options.tenants / 10))} pools (every request a miss): Silo ${k(f.miss.perRequest)} instructions a miss; the single app's warm request ${k(f.warm.perRequest)}; a raw pg connect + the query + close ${k(f.connect.perRequest)}; Silo's own part of a miss ${k(f.overhead)} (idle a second: Silo ${k(f.miss.idlePerS)}, single ${k(f.warm.idlePerS)}, connect ${k(f.connect.idlePerS)})`
  }
}

/** The row, or why it could not be measured here. */
export async function hotInstructionsRow (env: BenchEnv, single: PgConnection, options: InstructionOptions): Promise<RowFigures> {
  const figure = 'single app instructions / Silo\'s, a warm request'
  const target = '>= 0.95 (reported beside hot)'
  if (!callgrindAvailable()) return { figure, value: NaN, target, met: false, detail: notMeasured }
  const figures = await hotInstructions(env, single, options)
  return {
    figure,
    value: figures.ratio,
    target,
    met: figures.ratio >= 0.95,
    detail: `main thread, ${options.requests} GET /articles/1 one at a time after ${options.warmup} to warm up, Silo over ${options.tenants} tenants in turn, each side's work with no request over as long taken out: Silo ${k(figures.silo.perRequest)} instructions a request (${k(figures.silo.idlePerS)} a second idle), single app ${k(figures.single.perRequest)} (${k(figures.single.idlePerS)} a second idle)`
  }
}
