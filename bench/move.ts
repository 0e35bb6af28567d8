import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import type { MoveRecord } from '../src/catalog/tenant-moves.js'
import { tenantTables } from '../src/db/tenant-tables.js'
import { copyTables } from '../src/lifecycle/change-capture.js'
import type { Silo } from '../src/silo.js'
import { startEmbeddedServer } from '../src/testing/embedded-server.js'
import { siloApp, type Listening } from './apps.js'
import { benchScript, nodeArgs } from './bench-files.js'
import { benchEnv, benchSilo, cleanup, tenantCreator, type BenchEnv } from './fixtures.js'
import { median, percentile } from './load.js'
import type { MoveRun, MoveRunResult } from './move-runner.js'
import type { Write, WriterMessage, WriterOptions } from './move-writers.js'
import { SECOND } from './servers.js'
import { startWorker } from './worker-process.js'

export interface MoveRowOptions {
  /** Articles in the tenant before the move (about 1 KB each). */
  articles: number
  writers: number
  /** Each writer writes at most once per interval. */
  intervalMs: number
  /** Writing before the move starts (the latency without a move) and after it ends. */
  settleMs: number
  log: (line: string) => void
}

export interface MoveFigures {
  articles: number
  /** pg_total_relation_size of the tenant's articles before the move. */
  tableMb: number
  move: MoveRecord
  /** When the move began, ms since the epoch (performance.timeOrigin + now). */
  startedAt: number
  totalMs: number
  /** When each phase was reported, ms after the move began. */
  phases: Array<{ phase: string, atMs: number }>
  /** The plain copy on the same servers: CREATE DATABASE ... TEMPLATE on the second, then COPY of the same rows into it. */
  floor: { createMs: number, copyMs: number, totalMs: number, rows: number }
  writes: {
    total: number
    /** Writes under way at some moment of the move. */
    duringMove: number
    /** The longest of those: the hold a writer saw; its start, ms after the move began. */
    longestMs: number
    longestAtMs: number
    p99Ms: number
    /**
     * Writes begun during the freeze (from the last `frozen` report to that plus move.freezeMs,
     * when the switch committed): how many, and the latest any was answered after the switch.
     */
    held: number
    heldAnsweredAfterSwitchMs: number
    /** The longest write begun in each phase of the move (by its reports; `before` and `after` the move), in order. */
    longestByPhase: Array<[string, number]>
    /** Median and p99 of the writes before the move began. */
    beforeP50Ms: number
    beforeP99Ms: number
    /** Non-201 answers by `status code` (status 0: no answer). */
    errors: Map<string, number>
    /** Acknowledged (201) titles not at the destination after the move, and titles there twice. */
    lost: number
    duplicates: number
    /** Writes answered with an error whose row is at the destination all the same. */
    unacknowledgedThere: number
  }
  secondVersion: string
}

const SLUG = 'mover'
const HOST = `${SLUG}.bench`
const BODY_CHARS = 960
const writersScript = benchScript('move-writers')
const runnerScript = benchScript('move-runner')

/**
 * The `move` row: one tenant of `articles` rows moved from `default` to a second PostgreSQL (an
 * embedded one, started here on the same machine) while writers POST articles to it through a
 * listening Silo. The move runs in a process of its own, as `tenants move` does: the serving
 * instance learns of the freeze and the switch through the catalog feed, and the copy does not
 * share its event loop (in the serving process, it stalled that loop for 40-60 ms at a time). Before the load, the
 * floor: what a plain template clone plus COPY of the same rows takes between the same servers.
 * On a catalog of its own; everything made on both servers is dropped and the server removed.
 */
export async function moveUnderLoad (options: MoveRowOptions): Promise<MoveFigures> {
  const { log } = options
  const env = benchEnv()
  const second = await startEmbeddedServer({ dirPrefix: 'silo-bench-pg-' })
  const opened: Array<{ close: () => Promise<void> }> = []
  try {
    log(`move: a second PostgreSQL on port ${second.port}; catalog ${env.catalogDatabase}`)
    const serving = await benchSilo(env)
    opened.push(serving)
    // Created before the second server is registered: placed on `default`.
    const creator = await tenantCreator(serving)
    await creator.create(SLUG).finally(creator.close)
    const tableMb = await seedArticles(serving, options.articles)
    const record = await serving.serverRegistry.add({ name: SECOND, url: second.url })
    log(`  move: ${options.articles} articles (${tableMb.toFixed(1)} MB); the floor`)
    const floor = await plainCopy(env, serving, second.url)
    log(`  move: floor ${floor.totalMs.toFixed(0)} ms (create ${floor.createMs.toFixed(0)}, copy ${floor.copyMs.toFixed(0)}); moving under ${options.writers} writers`)

    const app: Listening = await siloApp(serving)
    opened.unshift(app)
    const writers = startWriters({ url: app.url, host: HOST, writers: options.writers, intervalMs: options.intervalMs, bodyChars: BODY_CHARS })
    let writes: Write[]
    let run: MoveRunResult
    try {
      await writers.started
      await sleep(options.settleMs)
      run = await runMove({ env, slug: SLUG, to: SECOND })
      await sleep(options.settleMs)
    } finally {
      writes = await writers.stop()
    }
    const { move, began, ended, phases } = run
    const titles = await checkTitles(serving, writes)
    return { articles: options.articles, tableMb, move, startedAt: began, totalMs: ended - began, phases, floor, writes: { ...latencies(writes, began, ended, phases, freezeWindow(phases, move.freezeMs)), ...titles }, secondVersion: record.serverVersion ?? 'unknown' }
  } finally {
    log('  move: dropping the catalog and its databases on both servers, removing the second server')
    const errors: unknown[] = []
    for (const resource of opened) await resource.close().catch((error: unknown) => { errors.push(error) })
    await removeAll(env, second, errors)
    for (const error of errors) log(`  move: could not close or remove: ${(error as Error).message}`)
  }
}

async function removeAll (env: BenchEnv, second: Awaited<ReturnType<typeof startEmbeddedServer>>, errors: unknown[]): Promise<void> {
  await cleanup(env).catch((error: unknown) => { errors.push(error) })
  await cleanup(env, second.url).catch((error: unknown) => { errors.push(error) })
  await second.destroy().catch((error: unknown) => { errors.push(error) })
}

/** `count` articles of about 1 KB each (under the TOAST threshold: stored as they are); the table's size in MB. */
async function seedArticles (silo: Silo, count: number): Promise<number> {
  return await silo.withTenant(SLUG, async (db) => {
    await db.raw(`insert into articles (title, body, published)
      select 'seeded ' || g, repeat(md5(g::text), ${BODY_CHARS / 32}), g % 2 = 0 from generate_series(1, ?::int) g`, [count])
    await db.raw('analyze articles')
    const { rows } = await db.raw<{ rows: Array<{ bytes: string }> }>("select pg_total_relation_size('articles') as bytes")
    return Number(rows[0]?.bytes ?? 0) / 1e6
  })
}

function urlOf (serverUrl: string, database: string): string {
  const url = new URL(serverUrl)
  url.pathname = `/${encodeURIComponent(database)}`
  return url.toString()
}

/**
 * The floor: `CREATE DATABASE ... TEMPLATE` of the second server's tenant template (migrated,
 * empty), then the tenant's tables copied into it with the move's own COPY (binary, a stream
 * between two sessions), read at one snapshot; no writes meanwhile. Dropped afterwards.
 */
async function plainCopy (env: BenchEnv, silo: Silo, secondUrl: string): Promise<MoveFigures['floor']> {
  const target = await silo.servers.byName(SECOND)
  if (target.template === undefined) throw new Error('the move row needs TENANT_TEMPLATE=on')
  await target.template.ready()
  const tenant = await silo.catalog.tenantBySlug(SLUG)
  if (tenant === null) throw new Error(`tenant ${SLUG} is missing`)
  const name = `${env.prefix}floor`
  const admin = new pg.Client({ connectionString: secondUrl })
  const clients = [admin]
  await admin.connect()
  try {
    const t0 = performance.now()
    await admin.query(`create database ${admin.escapeIdentifier(name)} template ${admin.escapeIdentifier(target.template.databaseName)}`)
    const t1 = performance.now()
    const from = new pg.Client({ connectionString: urlOf(env.databaseUrl, tenant.database.name) })
    const to = new pg.Client({ connectionString: urlOf(secondUrl, name) })
    clients.push(from, to)
    await Promise.all([from.connect(), to.connect()])
    const tables = await tenantTables(from)
    await from.query('begin isolation level repeatable read read only')
    const rows = await copyTables(from, to, tables)
    await from.query('commit')
    const t2 = performance.now()
    return { createMs: t1 - t0, copyMs: t2 - t1, totalMs: t2 - t0, rows }
  } finally {
    for (const client of clients.slice(1)) await client.end().catch(() => {})
    await admin.query(`drop database if exists ${admin.escapeIdentifier(name)}`).finally(async () => { await admin.end() })
  }
}

/** The move, in a process of its own (bench/move-runner.ts). */
async function runMove (input: MoveRun): Promise<MoveRunResult> {
  const child = spawn(process.execPath, nodeArgs(runnerScript, JSON.stringify(input)), { stdio: ['ignore', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => { child.on('close', resolve) })
  if (code !== 0) throw new Error(`the move exited with ${String(code)}`)
  return JSON.parse(stdout) as MoveRunResult
}

/** The writers' process: `started` once each writer's first write is answered; `stop` resolves with every write. */
function startWriters (options: WriterOptions): { started: Promise<unknown>, stop: () => Promise<Write[]> } {
  const worker = startWorker<Extract<WriterMessage, { type: 'result' }>>(writersScript, options, 'writers')
  return { started: worker.started, stop: async () => (await worker.stop()).writes }
}

/** The last freeze, in ms after the move began: from its `frozen` report until its switch committed (freezeMs later). */
function freezeWindow (phases: MoveFigures['phases'], freezeMs: number | null): [number, number] | undefined {
  const frozen = phases.findLast((phase) => phase.phase === 'frozen')
  return frozen === undefined || freezeMs === null ? undefined : [frozen.atMs, frozen.atMs + freezeMs]
}

/** Latencies of the writes under way during the move (started before it ended, answered after it began), and of those before it. */
function latencies (writes: Write[], began: number, ended: number, phases: MoveFigures['phases'], freeze: [number, number] | undefined): Omit<MoveFigures['writes'], 'lost' | 'duplicates' | 'unacknowledgedThere'> {
  const during = writes.filter((write) => write.at <= ended && write.at + write.latencyMs >= began)
  const before = writes.filter((write) => write.at + write.latencyMs < began).map((write) => write.latencyMs)
  const longest = during.reduce<Write | undefined>((max, write) => max === undefined || write.latencyMs > max.latencyMs ? write : max, undefined)
  const byPhase = new Map<string, number>()
  for (const write of [...writes].sort((a, b) => a.at - b.at)) {
    const at = write.at - began
    const phase = at < 0 ? 'before' : at > ended - began ? 'after' : phases.findLast((report) => report.atMs <= at)?.phase ?? 'preparing'
    byPhase.set(phase, Math.max(byPhase.get(phase) ?? 0, write.latencyMs))
  }
  const held = freeze === undefined ? [] : writes.filter((write) => write.at - began >= freeze[0] && write.at - began <= freeze[1])
  const errors = new Map<string, number>()
  for (const write of writes) {
    if (write.status === 201) continue
    const key = `${write.status} ${write.code ?? ''}`.trim()
    errors.set(key, (errors.get(key) ?? 0) + 1)
  }
  return {
    total: writes.length,
    duringMove: during.length,
    longestMs: longest?.latencyMs ?? 0,
    longestAtMs: longest === undefined ? 0 : longest.at - began,
    p99Ms: percentile(during.map((write) => write.latencyMs), 99),
    longestByPhase: [...byPhase],
    held: held.length,
    heldAnsweredAfterSwitchMs: Math.max(0, ...held.map((write) => write.at + write.latencyMs - began - (freeze?.[1] ?? 0))),
    beforeP50Ms: median(before),
    beforeP99Ms: percentile(before, 99),
    errors
  }
}

/** Every acknowledged title at the destination (read through the catalog, after the move), and none twice. */
async function checkTitles (silo: Silo, writes: Write[]): Promise<{ lost: number, duplicates: number, unacknowledgedThere: number }> {
  const rows = await silo.withTenant(SLUG, async (db) => await db('articles').whereLike('title', 'writer %').select<Array<{ title: string }>>('title'))
  const counts = new Map<string, number>()
  for (const { title } of rows) counts.set(title, (counts.get(title) ?? 0) + 1)
  const acknowledged = writes.filter((write) => write.status === 201)
  return {
    lost: acknowledged.filter((write) => !counts.has(write.title)).length,
    duplicates: [...counts.values()].filter((count) => count > 1).length,
    unacknowledgedThere: writes.filter((write) => write.status !== 201 && counts.has(write.title)).length
  }
}
