import { randomBytes } from 'node:crypto'
import { appendFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig, type Config, type CoreConfig, type HttpConfig } from '../../src/config.js'
import { openSilo, type OpenSiloOptions, type Silo } from '../../src/silo.js'
import { dropSiloDatabases } from '../../src/testing/cleanup.js'
import type { TenantSummary } from '../../src/catalog/catalog-store.js'
import { assertBuilt } from './compiled.js'

// A compiled test older than its source, or a build older than the code, is refused here, in
// every test that opens a Silo.
assertBuilt()

/** The subset of tap's Test a helper needs (teardown), so helpers do not depend on tap's types. */
export interface Teardown {
  teardown: (fn: () => unknown) => void
}

export function databaseUrl (): string {
  const url = process.env.DATABASE_URL
  if (url === undefined || url === '') {
    throw new Error('DATABASE_URL is not set: run the tests through `npm test`, which starts an embedded PostgreSQL when needed')
  }
  return url
}

export const TEST_SECRET_KEY = 'test-secret-key-not-for-production'

/**
 * Environment of a test's own Silo: a catalog database and a tenant database prefix of its
 * own, so test files run in parallel on one server without seeing each other. Spare databases
 * are off: they are made in the background, and tests that count databases would race them
 * (test/spare-databases.test.ts turns them on).
 */
export function testEnv (overrides: Record<string, string | number> = {}): Record<string, string | number> {
  const id = randomBytes(4).toString('hex')
  return {
    DATABASE_URL: databaseUrl(),
    CATALOG_DATABASE: `silo_test_${id}`,
    TENANT_DB_PREFIX: `st${id}_`,
    SECRET_KEY: TEST_SECRET_KEY,
    LOG_LEVEL: 'silent',
    TENANT_SPARES: 0,
    ...overrides
  }
}

export function testConfig (overrides: Record<string, string | number> = {}): Config {
  return loadConfig(testEnv(overrides), { env: false, dotenv: false })
}

/**
 * Drops everything a test config may have created: tenant databases and roles, then the
 * catalog. Under `npm test` the run's wrapper keeps a list (SILO_TEST_DROPS, see
 * scripts/with-database.ts): the names go on it and are dropped once every test file is done.
 * Each DROP DATABASE forces a checkpoint, which flushes whatever the other test files are
 * writing meanwhile: some 340 of them in the middle of a run cost the files 36 s of waiting.
 */
export async function dropTestDatabases (config: Pick<Config, 'catalogDatabase' | 'tenantDbPrefix'>): Promise<void> {
  // Drops go by prefix, unchecked: only ever for names made for a test (testEnv's), never, say,
  // the shipped `silo_` on a server a developer's own deployment shares.
  if (!TEST_PREFIX.test(config.tenantDbPrefix) || !(config.catalogDatabase.startsWith('silo_test_') || config.catalogDatabase.startsWith(config.tenantDbPrefix))) {
    throw new Error(`refusing to drop ${config.catalogDatabase} and ${config.tenantDbPrefix}*: not names made for a test`)
  }
  const list = process.env.SILO_TEST_DROPS
  if (list !== undefined && list !== '') {
    appendFileSync(list, `${JSON.stringify({ catalogDatabase: config.catalogDatabase, tenantDbPrefix: config.tenantDbPrefix })}\n`)
    return
  }
  await dropSiloDatabases(databaseUrl(), config)
}

/** The tenant prefixes tests make (testEnv's `st<hex>_`, or a test's own two letters and hex). */
const TEST_PREFIX = /^[a-z]{2}[0-9a-f]{8}_$/

/** What a test opened, for its teardown to close: whatever is still undefined is skipped. */
export interface Opened {
  silo?: Silo
  app?: FastifyInstance
}

/**
 * The one teardown of a test's Silo, in order: its HTTP app, then the core's pools and catalog,
 * then every database and role of `databases` (a test config), if given, then `after` (say, a
 * server of the test's own). Registered before anything opens, so that a test failing half-way
 * still cleans up: fill the returned record as things open.
 */
export function closeInTeardown (
  t: Teardown,
  databases?: Pick<Config, 'catalogDatabase' | 'tenantDbPrefix'>,
  after?: () => Promise<void>
): Opened {
  const opened: Opened = {}
  t.teardown(async () => {
    await opened.app?.close()
    await opened.silo?.close()
    if (databases !== undefined) await dropTestDatabases(databases)
    await after?.()
  })
  return opened
}

/** An opened Silo core on a catalog of its own, removed with all its tenants in teardown. */
export async function testSilo (t: Teardown, overrides: Record<string, string | number> = {}): Promise<Silo> {
  return (await open(t, overrides, false)).silo
}

/** A Silo core plus its HTTP app (not listening; use app.inject), all closed in teardown. */
export async function testApp (
  t: Teardown,
  overrides: Record<string, string | number> = {},
  /** Registers test-only routes before the app is first used. */
  extend?: (app: FastifyInstance) => void,
  options: OpenSiloOptions = {}
): Promise<{ silo: Silo, app: FastifyInstance }> {
  const opened = await open(t, overrides, true, options)
  const app = opened.app as FastifyInstance
  extend?.(app)
  return { silo: opened.silo, app }
}

async function open (t: Teardown, overrides: Record<string, string | number>, withApp: boolean, options: OpenSiloOptions = {}): Promise<{ silo: Silo, app: FastifyInstance | undefined }> {
  const config = testConfig(overrides)
  const opened = closeInTeardown(t, config)
  const silo = opened.silo = await openSilo(config, options)
  if (withApp) opened.app = await buildApp(silo, { config })
  return { silo, app: opened.app }
}

/**
 * Another instance, core and HTTP app, on `config` (say, the catalog of a testApp's, as a second
 * server would be): closed in teardown, app then core. Its databases are the first instance's,
 * dropped by that one's teardown.
 */
export async function anotherInstance (t: Teardown, config: CoreConfig, options: OpenSiloOptions = {}, http: HttpConfig = testConfig()): Promise<{ silo: Silo, app: FastifyInstance }> {
  const opened = closeInTeardown(t)
  const silo = opened.silo = await openSilo(config, options)
  const app = opened.app = await buildApp(silo, { config: http })
  return { silo, app }
}

/** Provisions a tenant whose domain is `<slug>.test` unless domains are given. */
export async function createTenant (silo: Silo, slug: string, options: { domains?: string[], seed?: boolean } = {}): Promise<TenantSummary> {
  return await silo.provisioner.create({ slug, domains: options.domains ?? [`${slug}.test`], seed: options.seed ?? false })
}

/** What exists of a tenant wherever Silo puts something: its catalog status (null: no entry), its database, its role. */
export async function tenantFootprint (silo: Silo, slug: string): Promise<{ catalog: string | null, database: boolean, role: boolean }> {
  const name = `${silo.config.tenantDbPrefix}${slug.replaceAll('-', '_')}`
  return {
    catalog: (await silo.catalog.tenantBySlug(slug))?.status ?? null,
    database: await silo.admin.databaseExists(name),
    role: await silo.admin.roleExists(name)
  }
}
