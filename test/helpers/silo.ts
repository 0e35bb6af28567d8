import { randomBytes } from 'node:crypto'
import knex from 'knex'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'
import { connectionFromUrl, knexConfig } from '../../src/db/knex-config.js'
import { ServerAdmin } from '../../src/db/server-admin.js'
import { openSilo, type Silo } from '../../src/silo.js'
import type { TenantSummary } from '../../src/catalog/catalog-store.js'

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

/** Drops everything a test config may have created: tenant databases and roles, then the catalog. */
export async function dropTestDatabases (config: Pick<Config, 'catalogDatabase' | 'tenantDbPrefix'>): Promise<void> {
  const db = knex(knexConfig({ connection: connectionFromUrl(databaseUrl()), pool: { min: 0, max: 1 } }))
  try {
    const admin = new ServerAdmin(db)
    for (const name of await admin.listDatabases(config.tenantDbPrefix)) await admin.dropDatabaseUnchecked(name)
    for (const name of await admin.listRoles(config.tenantDbPrefix)) await admin.dropRoleUnchecked(name)
    await admin.dropDatabaseUnchecked(config.catalogDatabase)
  } finally {
    await db.destroy()
  }
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
  extend?: (app: FastifyInstance) => void
): Promise<{ silo: Silo, app: FastifyInstance }> {
  const opened = await open(t, overrides, true)
  const app = opened.app as FastifyInstance
  extend?.(app)
  return { silo: opened.silo, app }
}

/** One teardown, in order: HTTP app, then the core's pools and catalog, then the databases. */
async function open (t: Teardown, overrides: Record<string, string | number>, withApp: boolean): Promise<{ silo: Silo, app: FastifyInstance | undefined }> {
  const config = testConfig(overrides)
  const opened: { silo?: Silo, app?: FastifyInstance } = {}
  t.teardown(async () => {
    await opened.app?.close()
    await opened.silo?.close()
    await dropTestDatabases(config)
  })
  const silo = opened.silo = await openSilo(config)
  if (withApp) opened.app = await buildApp(silo)
  return { silo, app: opened.app }
}

/** Provisions a tenant whose domain is `<slug>.test` unless domains are given. */
export async function createTenant (silo: Silo, slug: string, options: { domains?: string[], seed?: boolean } = {}): Promise<TenantSummary> {
  return await silo.provisioner.create({ slug, domains: options.domains ?? [`${slug}.test`], seed: options.seed ?? false })
}
