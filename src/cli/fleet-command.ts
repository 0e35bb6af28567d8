import { SingleBar, Presets } from 'cli-progress'
import { tenantMigrations } from '../db/knex-config.js'
import type { Silo } from '../silo.js'
import { migrateFleet, type TenantMigrationResult } from '../lifecycle/fleet-migrator.js'
import { fleetJson, resultLayout, resultLine, summarize, summaryLine, type FleetDirection } from './output.js'
import { planText, rollbackPlan } from './rollback-plan.js'
import { UsageError, type FleetCommandOptions } from './usage.js'

/** What migrate and rollback use of the core. */
export type FleetDeps = Pick<Silo, 'catalog' | 'migrator' | 'events' | 'fleetMigrations'>

async function slugsOf (silo: FleetDeps, targets: string[] | 'all'): Promise<string[]> {
  return targets === 'all' ? (await silo.catalog.listTenants()).map((tenant) => tenant.slug) : targets
}

/**
 * Runs migrate or rollback over the fleet and prints it: a progress bar on a terminal, a line
 * per tenant otherwise (columns aligned), JSON with --json. Returns whether every tenant succeeded.
 * With --all it is a fleet migration (one at a time in the deployment, recorded as a run the
 * admin API shows at /migrations/:id; refused with MIGRATION_RUNNING while another runs).
 */
export async function runFleet (silo: FleetDeps, targets: string[] | 'all', direction: FleetDirection, options: FleetCommandOptions): Promise<boolean> {
  const slugs = await slugsOf(silo, targets)
  const migrations = await tenantMigrations.getMigrations()
  const layout = resultLayout(slugs, migrations.map((file) => tenantMigrations.getMigrationName(file)), direction)
  const started = performance.now()
  const bar = options.json !== true && process.stderr.isTTY && slugs.length > 1
    ? new SingleBar({ stream: process.stderr, format: '{bar} {value}/{total} tenants  {failed} failed  eta {eta}s' }, Presets.shades_classic)
    : undefined
  let failed = 0
  bar?.start(slugs.length, 0, { failed })
  const onResult = (result: TenantMigrationResult): void => {
    if (result.status === 'failed') failed++
    if (bar !== undefined) bar.increment({ failed })
    else if (options.json !== true) console.log(resultLine(result, layout))
  }
  const results = targets === 'all'
    ? (await (await silo.fleetMigrations.start({ direction, concurrency: options.concurrency, origin: 'cli', onResult, fleet: slugs })).done).results
    : await migrateFleet(silo.catalog, silo.migrator, slugs, { direction, concurrency: options.concurrency, onResult, events: silo.events })
  bar?.stop()
  const summary = summarize(results, Math.round(performance.now() - started))
  if (options.json === true) {
    console.log(JSON.stringify(fleetJson(results, summary, direction), null, 2))
  } else {
    if (bar !== undefined) for (const result of results.filter((r) => r.status === 'failed')) console.log(resultLine(result, layout))
    console.log(summaryLine(summary, direction))
  }
  return summary.failed === 0
}

/**
 * `rollback`: undoing a batch can drop tables with their data, so without --yes it only prints
 * what each tenant's rollback would undo (read-only) and refuses, like `drop` (exit 2).
 */
export async function runRollback (silo: FleetDeps, targets: string[] | 'all', options: FleetCommandOptions): Promise<boolean> {
  if (options.yes === true) return await runFleet(silo, targets, 'rollback', options)
  const plan = await rollbackPlan(silo, await slugsOf(silo, targets), options.concurrency)
  console.log(options.json === true ? JSON.stringify({ plan }, null, 2) : planText(plan))
  throw new UsageError('refusing to roll back without --yes (it can drop tables and their data); the plan is above')
}
