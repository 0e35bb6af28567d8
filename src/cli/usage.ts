import { validationFailed } from '../errors.js'
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

/** How a command module wraps its action (exit codes, error printing): see `action` in index.ts. */
export type Action = <A extends unknown[]>(body: (...args: A) => Promise<boolean | undefined>) => (...args: A) => Promise<void>

/** `--url -`: a URL from standard input (its first line), so its password stays out of shell history and the process list. */
export async function urlFromStdin (what: string): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  const url = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0]?.trim() ?? ''
  if (url === '') throw validationFailed(`--url - reads ${what} from standard input, which was empty`)
  return url
}

/** A repeatable option's values (`--domain a --domain b`). */
export const collect = (value: string, previous: string[]): string[] => [...previous, value]
