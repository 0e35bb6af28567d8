import type { CatalogStore } from '../catalog/catalog-store.js'
import type { ServerAdmin } from '../db/server-admin.js'
import { SiloError } from '../errors.js'
import type { Provisioner } from './provisioner.js'

export interface DoctorReport {
  /** Databases named with Silo's prefix that no catalog entry claims. */
  orphanDatabases: string[]
  /** Roles named with Silo's prefix that no catalog entry claims. */
  orphanRoles: string[]
  /** Catalog entries whose database is gone. */
  missingDatabases: string[]
  /** Catalog entries left provisioning, failed or dropping by an interrupted operation. */
  stuck: Array<{ slug: string, status: string }>
}

export interface DoctorRepair {
  dropped: { databases: string[], roles: string[], tenants: string[] }
  /** Entries another process is working on right now, left alone. */
  skipped: Array<{ slug: string, reason: string }>
}

export interface DoctorDeps {
  admin: ServerAdmin
  catalog: CatalogStore
  provisioner: Provisioner
  prefix: string
  /** Names Silo owns that are not tenants (the template database and role). */
  reserved: string[]
}

export const isHealthy = (report: DoctorReport): boolean =>
  report.orphanDatabases.length + report.orphanRoles.length + report.missingDatabases.length + report.stuck.length === 0

/** Compares the server with the catalog: what exists on one and not the other. */
export async function diagnose (deps: DoctorDeps): Promise<DoctorReport> {
  const tenants = await deps.catalog.listTenants()
  const claimed = new Set([...tenants.map((tenant) => tenant.databaseName), ...deps.reserved])
  const databases = await deps.admin.listDatabases(deps.prefix)
  const roles = await deps.admin.listRoles(deps.prefix)
  const existing = new Set(databases)
  return {
    orphanDatabases: databases.filter((name) => !claimed.has(name)),
    orphanRoles: roles.filter((name) => !claimed.has(name)),
    missingDatabases: tenants.filter((tenant) => tenant.status !== 'dropping' && !existing.has(tenant.databaseName)).map((tenant) => tenant.slug),
    stuck: tenants.filter((tenant) => tenant.status === 'provisioning' || tenant.status === 'failed' || tenant.status === 'dropping')
      .map((tenant) => ({ slug: tenant.slug, status: tenant.status }))
  }
}

/**
 * Brings server and catalog back in step: orphan databases and roles are dropped; tenants
 * whose database is gone, or left half-made or half-dropped, are dropped through the
 * provisioner (under their lock, so an operation in progress is skipped, not raced).
 */
export async function repair (deps: DoctorDeps, report: DoctorReport): Promise<DoctorRepair> {
  const result: DoctorRepair = { dropped: { databases: [], roles: [], tenants: [] }, skipped: [] }
  const slugs = [...new Set([...report.missingDatabases, ...report.stuck.map((entry) => entry.slug)])]
  for (const slug of slugs) {
    try {
      await deps.provisioner.drop(slug)
      result.dropped.tenants.push(slug)
    } catch (error) {
      if (!(error instanceof SiloError) || error.code !== 'TENANT_LOCKED') throw error
      result.skipped.push({ slug, reason: 'another operation on it is in progress' })
    }
  }
  // Re-read: a create may have claimed a name since the diagnosis.
  const claimed = new Set([...(await deps.catalog.listTenants()).map((tenant) => tenant.databaseName), ...deps.reserved])
  for (const name of report.orphanDatabases.filter((db) => !claimed.has(db))) {
    await deps.admin.dropDatabase(name)
    result.dropped.databases.push(name)
  }
  for (const name of report.orphanRoles.filter((role) => !claimed.has(role))) {
    await deps.admin.dropRole(name)
    result.dropped.roles.push(name)
  }
  return result
}
