import { SingleBar, Presets } from 'cli-progress'
import type { Silo } from '../silo.js'
import { migrateFleet, type TenantMigrationResult } from '../tenancy/fleet-migrator.js'
import { assertSlug } from '../tenancy/tenant-names.js'
import { resultLine, summarize, summaryLine } from './output.js'

export interface FleetCommandOptions {
  all?: boolean
  concurrency?: number
  json?: boolean
}

export class UsageError extends Error {}

/** Which tenants a migrate/rollback names: the slugs given, or with --all every tenant. */
export function fleetTargets (slugs: string[], options: FleetCommandOptions): string[] | 'all' {
  if (options.all === true && slugs.length > 0) throw new UsageError('give tenant slugs or --all, not both')
  if (options.all === true) return 'all'
  if (slugs.length === 0) throw new UsageError('name the tenants to migrate, or pass --all')
  return [...new Set(slugs.map(assertSlug))]
}

/**
 * Runs migrate or rollback over the fleet and prints it: a progress bar on a terminal, a line
 * per tenant otherwise, JSON with --json. Returns whether every tenant succeeded.
 */
export async function runFleet (silo: Silo, targets: string[] | 'all', direction: 'latest' | 'rollback', options: FleetCommandOptions): Promise<boolean> {
  const slugs = targets === 'all' ? (await silo.catalog.listTenants()).map((tenant) => tenant.slug) : targets
  const started = performance.now()
  const bar = options.json !== true && process.stderr.isTTY && slugs.length > 1
    ? new SingleBar({ stream: process.stderr, format: '{bar} {value}/{total} tenants  {failed} failed  eta {eta}s' }, Presets.shades_classic)
    : undefined
  let failed = 0
  bar?.start(slugs.length, 0, { failed })
  const onResult = (result: TenantMigrationResult): void => {
    if (result.status === 'failed') failed++
    if (bar !== undefined) bar.increment({ failed })
    else if (options.json !== true) console.log(resultLine(result))
  }
  const results = await migrateFleet(silo.catalog, silo.migrator, slugs, {
    direction,
    concurrency: options.concurrency ?? silo.config.migrateConcurrency,
    onResult,
    events: silo.events
  })
  bar?.stop()
  const summary = summarize(results, Math.round(performance.now() - started))
  if (options.json === true) {
    console.log(JSON.stringify({ results, summary }, null, 2))
  } else {
    if (bar !== undefined) for (const result of results.filter((r) => r.status === 'failed')) console.log(resultLine(result))
    console.log(summaryLine(summary, direction === 'latest' ? 'migrated' : 'rolled back'))
  }
  return summary.failed === 0
}
