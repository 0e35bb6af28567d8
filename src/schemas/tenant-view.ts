import type { TenantSummary } from '../catalog/catalog-store.js'
import type { TenantView } from './admin.js'

/**
 * The one public shape of a tenant, for the admin API and the CLI's `--json` alike: no
 * credentials, ISO dates.
 */
export const tenantView = (tenant: TenantSummary): TenantView => ({
  slug: tenant.slug,
  name: tenant.name,
  status: tenant.status,
  schemaVersion: tenant.schemaVersion,
  database: tenant.databaseName,
  server: tenant.server,
  attached: tenant.attached,
  schemaManaged: tenant.schemaManaged,
  domains: tenant.domains,
  primaryDomain: tenant.primaryDomain,
  createdAt: tenant.createdAt.toISOString(),
  updatedAt: tenant.updatedAt.toISOString()
})
