import type { TenantSummary } from '../catalog/catalog-store.js'
import type { TenantMigrationResult } from '../tenancy/fleet-migrator.js'

/** Plain text table: columns padded to their widest cell. */
export function table (headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)))
  const line = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd()
  return [line(headers), ...rows.map(line)].join('\n')
}

export function tenantsTable (tenants: TenantSummary[]): string {
  if (tenants.length === 0) return 'no tenants'
  return table(['SLUG', 'STATUS', 'SCHEMA', 'DATABASE', 'DOMAINS'], tenants.map((tenant) => [
    tenant.slug, tenant.status, tenant.schemaVersion ?? '-', tenant.databaseName, tenant.domains.join(', ')
  ]))
}

/** The JSON shape of a tenant for scripts: no credentials, ISO dates. */
export function tenantJson (tenant: TenantSummary): Record<string, unknown> {
  return {
    slug: tenant.slug,
    name: tenant.name,
    status: tenant.status,
    schemaVersion: tenant.schemaVersion,
    database: tenant.databaseName,
    domains: tenant.domains,
    primaryDomain: tenant.primaryDomain,
    createdAt: tenant.createdAt.toISOString(),
    updatedAt: tenant.updatedAt.toISOString()
  }
}

const MARKS: Record<TenantMigrationResult['status'], string> = { migrated: 'ok  ', 'up-to-date': 'ok  ', skipped: 'skip', failed: 'FAIL' }

export function resultLine (result: TenantMigrationResult): string {
  const versions = `${result.before ?? '(none)'} -> ${result.after ?? '(none)'}`
  const error = result.error === undefined ? '' : `: ${result.error}`
  return `${MARKS[result.status]} ${result.slug}  ${result.status}  ${versions}  ${result.durationMs} ms${error}`
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

export function summaryLine (summary: FleetSummary, verb: string): string {
  return `${summary.tenants} tenants: ${summary.migrated} ${verb}, ${summary.upToDate} up to date, ${summary.skipped} skipped, ` +
    `${summary.failed} failed in ${(summary.durationMs / 1000).toFixed(1)} s`
}
