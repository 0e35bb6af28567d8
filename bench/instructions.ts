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
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { PgConnection } from '../src/db/knex-config.js'
import type { BenchEnv } from './fixtures.js'
import { hostOf } from './hosts.js'
import type { InstructionServerMessage, InstructionServerOptions } from './instruction-server.js'
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

const serverScript = fileURLToPath(new URL('./instruction-server.ts', import.meta.url))
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
 * taken out.
 */
async function count (side: InstructionServerOptions['side'], server: Omit<InstructionServerOptions, 'side'>, options: InstructionOptions, dir: string): Promise<SideInstructions> {
  const callgrind = ['valgrind', '--tool=callgrind', '--separate-threads=yes', '--smc-check=all-non-file', `--log-file=${join(dir, side)}.log`, `--callgrind-out-file=${join(dir, side)}.%p`]
  const worker = startWorker<Extract<InstructionServerMessage, { type: 'result' }>, Extract<InstructionServerMessage, { type: 'started' }>>(serverScript, { ...server, side }, `${side} server`, callgrind)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    const { url } = await worker.started
    const pid = worker.pid as number
    const hosts = side === 'silo' ? Array.from({ length: options.tenants }, (_, i) => hostOf(i)) : ['single.bench']
    await send(agent, url, hosts, options.warmup)
    await run('callgrind_control', ['-z', String(pid)])
    const started = performance.now()
    await send(agent, url, hosts, options.requests)
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

/** Silo's and the single-database app's instructions per warm request, each under callgrind, both at once. */
export async function hotInstructions (env: BenchEnv, single: PgConnection, options: InstructionOptions): Promise<InstructionFigures> {
  const dir = await mkdtemp(join(tmpdir(), 'silo-bench-callgrind-'))
  try {
    const [silo, alone] = await Promise.all([count('silo', { env, single }, options, dir), count('single', { env, single }, options, dir)])
    return { silo, single: alone, ratio: alone.perRequest / silo.perRequest }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** The row, or why it could not be measured here. */
export async function hotInstructionsRow (env: BenchEnv, single: PgConnection, options: InstructionOptions): Promise<{ figure: string, value: number, target: string, met: boolean, detail: string }> {
  const figure = 'single app instructions / Silo\'s, a warm request'
  const target = '>= 0.95 (reported beside hot)'
  if (!callgrindAvailable()) return { figure, value: NaN, target, met: false, detail: 'not measured: valgrind (callgrind) is not installed (`apt-get install valgrind`)' }
  const figures = await hotInstructions(env, single, options)
  const k = (n: number): string => `${(n / 1000).toFixed(1)}k`
  return {
    figure,
    value: figures.ratio,
    target,
    met: figures.ratio >= 0.95,
    detail: `main thread, ${options.requests} GET /articles/1 one at a time after ${options.warmup} to warm up, Silo over ${options.tenants} tenants in turn, each side's work with no request over as long taken out: Silo ${k(figures.silo.perRequest)} instructions a request (${k(figures.silo.idlePerS)} a second idle), single app ${k(figures.single.perRequest)} (${k(figures.single.idlePerS)} a second idle)`
  }
}
