import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import knex from 'knex'
import { buildApp } from '../src/app.js'
import { encodeTenantCursor } from '../src/catalog/tenant-page.js'
import { connectionFromUrl, knexConfig } from '../src/db/knex-config.js'
import { projectRoot } from './bench-files.js'
import { benchHttpConfig, benchSilo, BENCH_ADMIN_TOKEN, cleanup, type BenchEnv } from './fixtures.js'
import { median } from './load.js'

export interface FleetListFigures {
  tenants: number
  seedSeconds: number
  /** GET /tenants with no parameters (100 tenants), median. */
  firstPageMs: number
  /** GET /tenants?limit=100 from the middle of the fleet, median. */
  middlePageMs: number
  /** Every page of GET /tenants?limit=1000, one after another. */
  walkSeconds: number
  pages: number
  /** Whether the walk returned every tenant once, in slug order. */
  walkExact: boolean
  /** GET /tenants?search=… matching a few tenants (a domain substring), median. */
  searchMs: number
  searchHits: number
  /** The previous answer: every tenant in one `listTenants()`. */
  listAllSeconds: number
  cliSeconds: number
  /** Peak RSS of `tenants list --json` (null where /usr/bin/time is missing). */
  cliPeakRssMb: number | null
  cliTenants: number
}

const root = projectRoot
const slug = (i: number): string => `f${String(i).padStart(6, '0')}`

async function timed<T> (fn: () => Promise<T>): Promise<{ ms: number, value: T }> {
  const t0 = performance.now()
  const value = await fn()
  return { ms: performance.now() - t0, value }
}

/**
 * Puts `count` tenants with two domains each straight into the catalog, in three statements:
 * catalog rows only (fake database names, one credential sealed once and reused), no databases.
 * No instance is listening meanwhile, so the domain notifications reach nobody.
 */
export async function seedFleet (env: BenchEnv, count: number): Promise<void> {
  const silo = await benchSilo(env)
  let sealed: string
  let version: string | null
  try {
    await silo.catalog.insertTenant({ slug: 'sealed-once', name: 'x', databaseName: `${env.prefix}sealed`, databaseUser: `${env.prefix}sealed`, password: 'fleet-list-bench-password', domains: [] })
    const row = await silo.catalog.knex('tenants').where({ slug: 'sealed-once' }).first<{ db_password: string } | undefined>('db_password')
    if (row === undefined) throw new Error('the sealed credential was not stored')
    sealed = row.db_password
    await silo.catalog.deleteTenant('sealed-once')
    version = await silo.migrator.latestVersion()
  } finally {
    await silo.close()
  }
  const db = knex(knexConfig({ connection: { ...connectionFromUrl(env.databaseUrl), database: env.catalogDatabase }, pool: { min: 0, max: 1 } }))
  try {
    await db.raw(`
      insert into tenants (slug, name, status, server_id, db_name, db_user, db_password, schema_version)
      select 'f' || lpad(i::text, 6, '0'), 'Fleet ' || md5(i::text),
        case when i % 97 = 0 then 'suspended' when i % 997 = 0 then 'failed' else 'active' end,
        (select id from servers where name = 'default'), ? || 'f' || lpad(i::text, 6, '0'), ? || 'f' || lpad(i::text, 6, '0'), ?, ?
      from generate_series(0, ? - 1) as i`, [env.prefix, env.prefix, sealed, version, count])
    // A primary under the fleet's zone, and a second domain of its own: a search by domain finds what no slug has.
    await db.raw(`
      insert into domains (host, tenant_id, is_primary)
      select host, id, is_primary from tenants,
        lateral (values (slug || '.fleet.test', true), ('www.' || substr(md5(slug), 1, 12) || '.example', false)) as d (host, is_primary)`)
    await db.raw('analyze tenants')
    await db.raw('analyze domains')
  } finally {
    await db.destroy()
  }
}

/** `tenants list --json` as its own process: wall time, peak RSS (GNU time's %M), tenants in its one JSON array. */
async function cliList (env: BenchEnv): Promise<{ seconds: number, peakRssMb: number | null, tenants: number }> {
  const built = spawnSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd: root, stdio: 'inherit' })
  if (built.status !== 0) throw new Error('the build failed')
  const cli = ['dist/src/cli/tenants.mjs', 'list', '--json']
  const withTime = existsSync('/usr/bin/time')
  const [command, args] = withTime ? ['/usr/bin/time', ['-f', '%M', process.execPath, ...cli]] : [process.execPath, cli]
  const t0 = performance.now()
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, DATABASE_URL: env.databaseUrl, CATALOG_DATABASE: env.catalogDatabase, TENANT_DB_PREFIX: env.prefix, SECRET_KEY: 'bench-secret-key-not-for-production', LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const chunks: Buffer[] = []
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => { child.on('close', resolve) })
  const seconds = (performance.now() - t0) / 1000
  if (code !== 0) throw new Error(`tenants list --json exited ${code}: ${stderr}`)
  const tenants = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[]).length
  const kb = withTime ? Number(stderr.trim().split('\n').at(-1)) : NaN
  return { seconds, peakRssMb: Number.isFinite(kb) ? kb / 1024 : null, tenants }
}

/**
 * The admin list and `tenants list` over a fleet of `count` tenants, on a catalog of their own
 * (made, filled and dropped here): the first page, a middle page, every page, a search, and the
 * CLI's whole list as a process of its own.
 */
export async function fleetList (env: BenchEnv, count: number, log: (line: string) => void): Promise<FleetListFigures> {
  try {
    log(`  fleet list: ${count} tenants, ${2 * count} domains into ${env.catalogDatabase}`)
    const seed = await timed(async () => { await seedFleet(env, count) })
    const silo = await benchSilo(env)
    const app = await buildApp(silo, { config: benchHttpConfig })
    try {
      const get = async (url: string): Promise<{ items: Array<{ slug: string }>, nextCursor: string | null }> => {
        const res = await app.inject({ url, headers: { host: silo.config.adminHost, authorization: `Bearer ${BENCH_ADMIN_TOKEN}` } })
        if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${res.body}`)
        return res.json()
      }
      const samples = async (url: string, n: number): Promise<number> => {
        await get(url)
        const ms: number[] = []
        for (let i = 0; i < n; i++) ms.push((await timed(async () => await get(url))).ms)
        return median(ms)
      }
      const firstPageMs = await samples('/tenants', 20)
      const middle = encodeTenantCursor(slug(Math.floor(count / 2)))
      const middlePageMs = await samples(`/tenants?cursor=${middle}`, 20)
      const needle = (await silo.catalog.tenantBySlug(slug(Math.floor(count / 3))))?.domains[1]?.slice(4, 12) ?? 'none'
      const searchMs = await samples(`/tenants?search=${needle}`, 5)
      const searchHits = (await get(`/tenants?search=${needle}`)).items.length

      let pages = 0
      let previous = ''
      let seen = 0
      let walkExact = true
      const walk = await timed(async () => {
        for (let cursor: string | null = ''; cursor !== null; pages++) {
          const page = await get(`/tenants?limit=1000${cursor === '' ? '' : `&cursor=${cursor}`}`)
          for (const { slug } of page.items) {
            if (slug <= previous) walkExact = false
            previous = slug
            seen++
          }
          cursor = page.nextCursor
        }
      })
      const listAll = await timed(async () => await silo.catalog.listTenants())
      walkExact &&= seen === count && listAll.value.length === count
      log(`  fleet list: first page ${firstPageMs.toFixed(1)} ms, walk ${(walk.ms / 1000).toFixed(2)} s; running tenants list --json`)
      const cli = await cliList(env)
      return {
        tenants: count,
        seedSeconds: seed.ms / 1000,
        firstPageMs,
        middlePageMs,
        walkSeconds: walk.ms / 1000,
        pages,
        walkExact,
        searchMs,
        searchHits,
        listAllSeconds: listAll.ms / 1000,
        cliSeconds: cli.seconds,
        cliPeakRssMb: cli.peakRssMb,
        cliTenants: cli.tenants
      }
    } finally {
      await app.close()
      await silo.close()
    }
  } finally {
    await cleanup(env)
  }
}
