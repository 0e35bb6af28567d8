import type { PgConnection } from '../db/knex-config.js'
import type { TenantRecord } from './catalog-store.js'

/**
 * The one builder of a tenant's connection settings: the admin URL's server (TLS, timeouts) with
 * the tenant's own database, role and password, and its host and port where the catalog records
 * them. Request pools, migrations, `tenants run` and `silo.withTenant` all connect through it.
 */
export function tenantConnection (server: PgConnection, tenant: Pick<TenantRecord, 'database'>, applicationName: string): PgConnection {
  const { database } = tenant
  return {
    ...server,
    host: database.host ?? server.host,
    port: database.port ?? server.port,
    database: database.name,
    user: database.user,
    password: database.password,
    application_name: applicationName
  }
}
