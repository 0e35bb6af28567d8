import { assertSlug } from '../lifecycle/tenant-names.js'

/** A command line the CLI refuses (exit 2), before or instead of touching anything. */
export class UsageError extends Error {}

export interface FleetCommandOptions {
  all?: boolean
  /** Tenants at once (the caller fills in MIGRATE_CONCURRENCY when --concurrency is not given). */
  concurrency: number
  json?: boolean
  /** rollback only: do it, rather than print what it would undo. */
  yes?: boolean
}

/** Which tenants a migrate/rollback names: the slugs given, or with --all every tenant. */
export function fleetTargets (slugs: string[], options: Partial<FleetCommandOptions>): string[] | 'all' {
  if (options.all === true && slugs.length > 0) throw new UsageError('give tenant slugs or --all, not both')
  if (options.all === true) return 'all'
  if (slugs.length === 0) throw new UsageError('name the tenants, or pass --all')
  return [...new Set(slugs.map(assertSlug))]
}
