import { randomBytes } from 'node:crypto'
import knex, { type Knex } from 'knex'
import { loadConfig, type Config, type HttpConfig } from '../src/config.js'
import { knexConfig } from '../src/db/knex-config.js'
import { openSilo, type Silo } from '../src/silo.js'
import { buildApp } from '../src/app.js'
import { request } from 'node:http'
import type { ServerParts } from '../src/lifecycle/server-fleet.js'
import { dropSiloDatabases } from '../src/testing/cleanup.js'
import { slugOf } from './hosts.js'
import { percentile, median } from './load.js'

export interface BenchEnv {
  databaseUrl: string
  catalogDatabase: string
  prefix: string
}

export function benchEnv (): BenchEnv {
  const databaseUrl = process.env.DATABASE_URL
  if (databaseUrl === undefined || databaseUrl === '') throw new Error('DATABASE_URL is not set: run through `npm run bench`')
  const id = randomBytes(3).toString('hex')
  return { databaseUrl, catalogDatabase: `silo_bench_${id}`, prefix: `sb${id}_` }
}

/** A Silo core on the bench catalog, without spares; every scenario opens its own with its own pool settings. */
export async function benchSilo (env: BenchEnv, overrides: Record<string, string | number> = {}): Promise<Silo> {
  const config: Config = loadConfig({
    DATABASE_URL: env.databaseUrl,
    CATALOG_DATABASE: env.catalogDatabase,
    TENANT_DB_PREFIX: env.prefix,
    SECRET_KEY: 'bench-secret-key-not-for-production',
    LOG_LEVEL: 'silent',
    HOST_CACHE_TTL_MS: 60000,
    ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
    // No spares made in the background while a load scenario runs; provisioning turns them on.
    TENANT_SPARES: 0,
    ...overrides
  }, { env: false, dotenv: false })
  return await openSilo(config)
}

export const BENCH_ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef'

/**
 * What the bench's HTTP apps read of the configuration: the bench's admin token, and silent logs
 * unless BENCH_LOG_LEVEL names a level (`BENCH_LOG_LEVEL=warn npm run bench -- --only hot`: what
 * logging costs where a deployment writes no line per request).
 */
export const benchHttpConfig: HttpConfig = loadConfig({ LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'silent', ADMIN_TOKEN: BENCH_ADMIN_TOKEN }, { env: false, dotenv: false })

/**
 * Puts one article (id 1) into the template, so every tenant cloned from it can answer
 * GET /articles/1 without a seeding round trip of its own.
 */
export async function seedTemplate (silo: Silo): Promise<void> {
  await seedServerTemplate(silo.servers.default)
}

/** The same, into the template of one server (each server clones from a template of its own). */
export async function seedServerTemplate (server: Pick<ServerParts, 'name' | 'template' | 'admin' | 'connection'>): Promise<void> {
  const template = server.template
  if (template === undefined) throw new Error(`the bench needs TENANT_TEMPLATE=on (server ${server.name})`)
  await template.ready()
  await server.admin.setAllowConnections(template.databaseName, true)
  const db = knex(knexConfig({ connection: { ...server.connection, database: template.databaseName }, pool: { min: 0, max: 1 } }))
  try {
    if (await db('articles').count<Array<{ n: string }>>('* as n').then((rows) => Number(rows[0]?.n)) === 0) {
      await db('articles').insert({ title: 'Bench article', body: 'x'.repeat(200), published: true })
    }
  } finally {
    await db.destroy()
    await server.admin.setAllowConnections(template.databaseName, false)
  }
}

/** POST with a Host header of our choosing (fetch does not allow one). */
async function post (url: string, host: string, body: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: { host, authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
    }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => { text += chunk.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: text }) })
    })
    req.on('error', reject)
    req.end(body)
  })
}

export interface ProvisioningFigures {
  count: number
  medianMs: number
  p95Ms: number
  /** The timed creates by where their database came from (`tenant:created`'s source). */
  sources: Map<string, number>
}

/** Creates tenants through the admin API of `silo`, listening on a port of its own until `close`. */
export interface TenantCreator {
  /** POST /tenants for `slug`, with the domain `<slug>.bench`; throws unless 201. */
  create: (slug: string) => Promise<void>
  close: () => Promise<void>
}

export async function tenantCreator (silo: Silo): Promise<TenantCreator> {
  const app = await buildApp(silo, { config: benchHttpConfig })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  return {
    create: async (slug) => {
      const res = await post(`${base}/tenants`, silo.config.adminHost, JSON.stringify({ slug, domains: [`${slug}.bench`] }))
      if (res.status !== 201) throw new Error(`POST /tenants ${slug}: ${res.status} ${res.body}`)
    },
    close: async () => { await app.close() }
  }
}

/** Creates every slug of `slugs`, `concurrency` at a time; `onDone` after each. */
export async function createAll (creator: TenantCreator, slugs: readonly string[], concurrency: number, onDone?: (done: number) => void): Promise<void> {
  const todo = [...slugs]
  let done = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let slug = todo.shift(); slug !== undefined; slug = todo.shift()) {
      await creator.create(slug)
      onDone?.(++done)
    }
  }))
}

/**
 * Creates tenants `slug(0..count-1)` (skipping those that exist) through the admin API of a
 * listening Silo on `silo`: the first `timed` one after another, each timed end to end, the
 * rest `concurrency` at a time, untimed.
 */
export async function provisionTenants (
  silo: Silo,
  options: { count: number, timed: number, slug?: (i: number) => string, concurrency?: number, log?: (line: string) => void }
): Promise<ProvisioningFigures> {
  const slug = options.slug ?? slugOf
  const existing = new Set((await silo.catalog.listTenants()).map((tenant) => tenant.slug))
  const creator = await tenantCreator(silo)
  const durations: number[] = []
  const sources = new Map<string, number>()
  const count = ({ source }: { source: string }): void => { sources.set(source, (sources.get(source) ?? 0) + 1) }
  try {
    const todo = Array.from({ length: options.count }, (_, i) => slug(i)).filter((name) => !existing.has(name))
    silo.events.on('tenant:created', count)
    for (const name of todo.slice(0, options.timed)) {
      const t0 = performance.now()
      await creator.create(name)
      durations.push(performance.now() - t0)
    }
    // Only the timed creates are counted; `finally` lets go of the listener when one failed.
    silo.events.off('tenant:created', count)
    await createAll(creator, todo.slice(options.timed), options.concurrency ?? 4, (done) => {
      if (done % 200 === 0) options.log?.(`  provisioned ${done + durations.length}/${todo.length}`)
    })
  } finally {
    silo.events.off('tenant:created', count)
    await creator.close()
  }
  return { count: durations.length, medianMs: median(durations), p95Ms: percentile(durations, 95), sources }
}

/** Drops everything the bench's catalog `env` made on the server of `databaseUrl` (DATABASE_URL's unless said). */
export async function cleanup (env: BenchEnv, databaseUrl = env.databaseUrl): Promise<void> {
  await dropSiloDatabases(databaseUrl, { catalogDatabase: env.catalogDatabase, tenantDbPrefix: env.prefix }, 8)
}

/**
 * Highest number of backends PostgreSQL had open for Silo's tenant pools (application_name
 * `silo:<slug>`, on the bench's tenant databases) while `fn` ran, on every server of the Silo's
 * catalog together (`peakBackends`: the highest sum at one sample) and on each (`peakByServer`);
 * the baselines' connections are not counted.
 */
export async function withBackendSampler<T> (silo: Silo, fn: () => Promise<T>): Promise<{ value: T, peakBackends: number, peakByServer: Map<string, number> }> {
  const servers = await Promise.all((await silo.catalog.servers.list()).map(async (record) => await silo.servers.open(record)))
  const prefix = silo.config.tenantDbPrefix
  let peak = 0
  const peakByServer = new Map(servers.map((server) => [server.name, 0]))
  const state = { on: true }
  const sampler = (async () => {
    while (state.on) {
      const counts = await Promise.all(servers.map(async (server) => await tenantPoolBackends(server.admin.knex, prefix)))
      counts.forEach((count, i) => {
        const name = servers[i]?.name ?? ''
        peakByServer.set(name, Math.max(peakByServer.get(name) ?? 0, count))
      })
      peak = Math.max(peak, counts.reduce((total, count) => total + count, 0))
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })()
  try {
    return { value: await fn(), peakBackends: peak, peakByServer }
  } finally {
    state.on = false
    await sampler
  }
}

/** Sessions of Silo's tenant pools (application_name `silo:%`) on the databases named with `prefix`, on the server of `db`. */
async function tenantPoolBackends (db: Knex, prefix: string): Promise<number> {
  const rows = await db('pg_stat_activity')
    .whereLike('datname', `${prefix.replaceAll('_', '\\_')}%`)
    .whereLike('application_name', 'silo:%')
    .count<Array<{ count: string }>>('* as count')
  return Number(rows[0]?.count ?? 0)
}
