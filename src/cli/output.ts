import { once } from 'node:events'
import type { TenantColumnLengths, TenantSummary } from '../catalog/catalog-store.js'
import type { MigrationDirection } from '../catalog/migration-runs.js'
import type { TenantMigrationResult } from '../lifecycle/fleet-migrator.js'
import type { ServerView } from '../schemas/servers.js'

/** Plain text table: columns padded to their widest cell. */
export function table (headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)))
  return [headers, ...rows].map((row) => tableLine(row, widths)).join('\n')
}

function tableLine (cells: string[], widths: number[]): string {
  return cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd()
}

const TENANT_HEADERS = ['SLUG', 'STATUS', 'SERVER', 'SCHEMA', 'DATABASE', 'DOMAINS']
const tenantCells = (tenant: TenantSummary): string[] =>
  [tenant.slug, tenant.status, tenant.server ?? '-', tenant.schemaVersion ?? '-', tenant.databaseName, tenant.domains.join(', ')]

export function tenantsTable (tenants: TenantSummary[]): string {
  if (tenants.length === 0) return 'no tenants'
  return table(TENANT_HEADERS, tenants.map(tenantCells))
}

/** Column widths of a tenants table printed a page at a time, from the longest values of the whole list (domains, last, are never padded). */
export function tenantColumns (longest: TenantColumnLengths): number[] {
  const values = [longest.slug, longest.status, longest.server, Math.max(1, longest.schemaVersion), longest.database, 0]
  return TENANT_HEADERS.map((header, column) => Math.max(header.length, values[column] ?? 0))
}

/** One page of a tenants table in fixed widths, each line ending with a newline; the first page starts with the headers. */
export function tenantLines (tenants: TenantSummary[], widths: number[], first: boolean): string {
  const rows = tenants.map(tenantCells)
  return (first ? [TENANT_HEADERS, ...rows] : rows).map((row) => `${tableLine(row, widths)}\n`).join('')
}

/**
 * Elements of a JSON array printed a page at a time, exactly as `JSON.stringify(all, null, 2)`
 * would print them: the first page opens the array; `jsonArrayEnd` closes it.
 */
export function jsonArrayElements (items: unknown[], first: boolean): string {
  // JSON escapes newlines inside strings: every newline of an element is its layout's, indented one level.
  return items.map((item, i) => `${first && i === 0 ? '[\n' : ',\n'}  ${JSON.stringify(item, null, 2).replaceAll('\n', '\n  ')}`).join('')
}

export function jsonArrayEnd (empty: boolean): string {
  return empty ? '[]\n' : '\n]\n'
}

/**
 * Standard output for a list written a page at a time. `write` waits while the stream's buffer
 * is full, so a long list holds one page in memory rather than everything not sent yet, and
 * answers false once the reader is gone (`tenants list | head` closes the pipe: the list stops
 * there, quietly); any other error of the stream is thrown. The stream's error listener stays
 * until the process exits: the pipe can break after the last write.
 */
export function pagedOutput (out: NodeJS.WritableStream = process.stdout): (text: string) => Promise<boolean> {
  let failure: NodeJS.ErrnoException | undefined
  const onError = (error: NodeJS.ErrnoException): void => { failure ??= error }
  out.on('error', onError)
  const gone = (): boolean => {
    if (failure === undefined) return false
    if (failure.code === 'EPIPE') return true
    throw failure
  }
  return async (text) => {
    if (gone()) return false
    if (!out.write(text)) {
      // Rejects when the stream fails instead; `gone` then says how.
      await once(out, 'drain').catch(() => undefined)
    }
    return !gone()
  }
}

/** `8.1 MB`: a size in bytes, in the largest unit that keeps it at 1 or more (1024 each). */
export function formatBytes (bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit] ?? ''}`
}

/** The servers as a table; what the probe could not tell (an unreachable server) is `-`. */
export function serversTable (servers: ServerView[]): string {
  return table(['NAME', 'STATUS', 'TENANTS', 'MAX', 'WEIGHT', 'REACHABLE', 'VERSION', 'BACKENDS', 'SIZE'], servers.map((server) => [
    server.name,
    server.status,
    String(server.tenants),
    server.maxTenants === null ? '-' : String(server.maxTenants),
    String(server.weight),
    server.reachable ? 'yes' : 'no',
    server.serverVersion ?? '-',
    server.tenantBackends === null ? '-' : String(server.tenantBackends),
    server.tenantBytes === null ? '-' : formatBytes(server.tenantBytes)
  ]))
}

/**
 * Hides the password of every URL in a message (`postgres://user:***@host`): the last guard
 * before stderr, for errors that quote what was typed (commander's `unknown option
 * '--admin-url=postgres://...'`).
 */
export function redactUrls (text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)\S*@/gi, '$1***@')
}

/**
 * A message as one line: control characters in it (a newline or a carriage return in what was
 * typed, which commander quotes back in `unknown option '...'`) shown as escapes, so an error is
 * always one line on stderr and cannot forge a second one.
 */
export function oneLine (text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (char) =>
    char === '\n' ? '\\n' : char === '\r' ? '\\r' : char === '\t' ? '\\t' : `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

export type FleetDirection = MigrationDirection

const MARKS: Record<TenantMigrationResult['status'], string> = { migrated: 'ok  ', 'up-to-date': 'ok  ', skipped: 'skip', failed: 'FAIL' }

/** What a result's status means to the reader: a rollback that undid a batch did not "migrate". */
const STATUS_WORDS: Record<FleetDirection, Record<TenantMigrationResult['status'], string>> = {
  latest: { migrated: 'migrated', 'up-to-date': 'up-to-date', skipped: 'skipped', failed: 'failed' },
  rollback: { migrated: 'rolled-back', 'up-to-date': 'nothing-to-undo', skipped: 'skipped', failed: 'failed' }
}

export function statusWord (status: TenantMigrationResult['status'], direction: FleetDirection): string {
  return STATUS_WORDS[direction][status]
}

/** Column widths of the per-tenant lines, fixed before the first tenant finishes. */
export interface ResultLayout {
  direction: FleetDirection
  slug: number
  status: number
  version: number
}

const NO_VERSION = '(none)'
/** Durations are right-aligned in this many digits (up to 16 minutes a tenant). */
const DURATION_DIGITS = 6

/**
 * Widths from what is known before a run starts: the slugs it targets, the statuses (a fixed
 * set) and the migration names of this code base. A tenant migrated by a newer code base can
 * still carry a longer name; its line is then wider, the others stay aligned.
 */
export function resultLayout (slugs: string[], versions: string[], direction: FleetDirection): ResultLayout {
  return {
    direction,
    slug: Math.max(0, ...slugs.map((slug) => slug.length)),
    status: Math.max(...Object.values(STATUS_WORDS[direction]).map((word) => word.length)),
    version: Math.max(NO_VERSION.length, ...versions.map((version) => version.length))
  }
}

/** One tenant's line: mark, slug, status, version before -> after, duration, and the error if any. */
export function resultLine (result: TenantMigrationResult, layout: ResultLayout = resultLayout([], [], 'latest')): string {
  const versions = `${(result.before ?? NO_VERSION).padEnd(layout.version)} -> ${(result.after ?? NO_VERSION).padEnd(layout.version)}`
  const duration = `${String(result.durationMs).padStart(DURATION_DIGITS)} ms`
  const error = result.error === undefined ? '' : `: ${result.error}`
  return `${MARKS[result.status]} ${result.slug.padEnd(layout.slug)}  ${statusWord(result.status, layout.direction).padEnd(layout.status)}  ${versions}  ${duration}${error}`
}

export interface FleetSummary {
  tenants: number
  migrated: number
  upToDate: number
  skipped: number
  failed: number
  durationMs: number
}

export function summarize (results: TenantMigrationResult[], durationMs: number): FleetSummary {
  const count = (status: TenantMigrationResult['status']): number => results.filter((result) => result.status === status).length
  return { tenants: results.length, migrated: count('migrated'), upToDate: count('up-to-date'), skipped: count('skipped'), failed: count('failed'), durationMs }
}

export function summaryLine (summary: FleetSummary, direction: FleetDirection): string {
  const done = direction === 'latest'
    ? `${summary.migrated} migrated, ${summary.upToDate} up to date`
    : `${summary.migrated} rolled back, ${summary.upToDate} with nothing to undo`
  return `${summary.tenants} tenants: ${done}, ${summary.skipped} skipped, ${summary.failed} failed in ${(summary.durationMs / 1000).toFixed(1)} s`
}

/** The `--json` report: statuses and summary keys in the words of the direction. */
export function fleetJson (results: TenantMigrationResult[], summary: FleetSummary, direction: FleetDirection): Record<string, unknown> {
  if (direction === 'latest') return { results, summary }
  const { migrated, upToDate, ...rest } = summary
  return {
    results: results.map((result) => ({ ...result, status: statusWord(result.status, direction) })),
    summary: { tenants: rest.tenants, rolledBack: migrated, nothingToUndo: upToDate, skipped: rest.skipped, failed: rest.failed, durationMs: rest.durationMs }
  }
}
