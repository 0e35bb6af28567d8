import type { CatalogStore } from './catalog/catalog-store.js'
import type { Config } from './config.js'
import { DEMO_TENANTS } from './demo-tenants.js'
import { SiloError } from './errors.js'
import { normalizeDomain } from './tenancy/host.js'

/** Where the API docs are, as a person types it: the admin host with the port Silo listens on. */
export function docsUrl (adminHost: string, port: number): string {
  return `http://${adminHost}:${port}/docs`
}

/**
 * What embedded dev mode prints once listening: where the docs and the console are, the admin token (generated
 * for this data directory; printed in dev mode only) and the demo tenants' URLs. `*.localhost`
 * names resolve to 127.0.0.1 in browsers and curl, so each line can be opened as it is.
 */
export function devBanner (config: Pick<Config, 'adminHost' | 'adminToken' | 'dataDir'>, port: number): string {
  const tenants = DEMO_TENANTS.map((tenant) => `http://${tenant.domains[0] ?? ''}:${port}/articles`)
  return [
    '',
    `Silo is running (embedded PostgreSQL, data in ${config.dataDir}).`,
    '',
    `  API docs       ${docsUrl(config.adminHost, port)}`,
    `  Console        http://${config.adminHost}:${port}/console   (type the admin token below)`,
    `  Admin token    ${config.adminToken ?? '(none)'}   (dev mode only; send it as Authorization: Bearer <token>)`,
    `  Demo tenants   ${tenants.join('\n                 ')}`,
    '',
    'Provision more tenants: npm run tenants -- create <slug> --domain <host> --seed',
    ''
  ].join('\n')
}

/**
 * Refuses to serve when ADMIN_HOST is also a tenant's domain: admin routes would take that host,
 * and the tenant would get 404 on every route. The provisioner refuses such a domain, but one
 * added under another ADMIN_HOST (or before this check) is still in the catalog. The CLI does not
 * run this check: it is how the operator fixes the catalog.
 */
export async function assertAdminHostFree (catalog: CatalogStore, adminHost: string): Promise<void> {
  const host = normalizeDomain(adminHost)
  if (host === null) return
  const tenant = await catalog.tenantByHost(host)
  if (tenant === null) return
  throw new SiloError('CONFIG_INVALID',
    `ADMIN_HOST ${host} is also a domain of tenant ${tenant.slug}, which would get 404 on every route: ` +
    `remove the domain (npm run tenants -- domains remove ${host}) or set ADMIN_HOST to another host`)
}
