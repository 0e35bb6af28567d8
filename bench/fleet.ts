import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import pLimit from 'p-limit'
import pg from 'pg'
import { DirectoryMigrationSource } from '../src/db/migration-source.js'
import { tenantMigrationsDir } from '../src/db/paths.js'
import type { Silo } from '../src/silo.js'
import { migrateFleet } from '../src/lifecycle/fleet-migrator.js'
import { TenantMigrator } from '../src/lifecycle/tenant-migrator.js'

export interface FleetFigures {
  tenants: number
  seconds: number
  failed: number
  /** Opening, using once and closing one connection per tenant, same concurrency: the floor of any fleet run. */
  floorSeconds: number
}

/**
 * One additive migration over `slugs` at `concurrency`, through the fleet migrator (catalog
 * records included), against the floor that no migration of one database per tenant can beat:
 * a connection per tenant.
 */
export async function fleetMigration (silo: Silo, slugs: string[], concurrency: number): Promise<FleetFigures> {
  const dir = await mkdtemp(join(tmpdir(), 'silo-bench-migrations-'))
  try {
    const files = await readdir(tenantMigrationsDir)
    for (const file of files) {
      if (file.endsWith('.ts') || file.endsWith('.js')) await copyFile(new URL(file, tenantMigrationsDir), join(dir, file))
    }
    const extension = files.some((file) => file.endsWith('.ts')) ? '.ts' : '.js'
    await writeFile(join(dir, `20991231000000_bench_additive${extension}`),
      'export async function up (knex) { await knex.schema.alterTable(\'articles\', (t) => { t.text(\'bench_note\') }) }\n' +
      'export async function down (knex) { await knex.schema.alterTable(\'articles\', (t) => { t.dropColumn(\'bench_note\') }) }\n')

    const records = await silo.catalog.tenantsBySlugs(slugs)
    const limit = pLimit(concurrency)
    const f0 = performance.now()
    await Promise.all([...records.values()].map(async (tenant) => await limit(async () => {
      const client = new pg.Client({ ...silo.server, database: tenant.database.name, user: tenant.database.user, password: tenant.database.password })
      await client.connect()
      await client.query('select 1')
      await client.end()
    })))
    const floorSeconds = (performance.now() - f0) / 1000

    const migrator = new TenantMigrator(new DirectoryMigrationSource(pathToFileURL(`${dir}/`)))
    const t0 = performance.now()
    const results = await migrateFleet(silo.catalog, migrator, slugs, { concurrency })
    const seconds = (performance.now() - t0) / 1000
    return { tenants: slugs.length, seconds, failed: results.filter((r) => r.status !== 'migrated').length, floorSeconds }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
