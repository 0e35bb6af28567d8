import type { PgConnection } from '../db/knex-config.js'
import type { TenantRecord } from './catalog-store.js'

/**
 * The one builder of a tenant's connection settings: its server's endpoint (host, port, TLS: the
 * tenant endpoint, or the admin URL's) with the tenant's own database, role and password, and its
 * own host and port where the catalog records them (an attached database: its URL's host, port and TLS). Request pools, migrations, `tenants run` and
 * `silo.withTenant` all connect through it.
 */
export function tenantConnection (tenant: Pick<TenantRecord, 'database' | 'server'>, applicationName: string): PgConnection {
  const { database, server } = tenant
  const connection: PgConnection = {
    ...server.endpoint,
    host: database.host ?? server.endpoint.host,
    port: database.port ?? server.endpoint.port,
    database: database.name,
    user: database.user,
    password: database.password,
    application_name: applicationName
  }
  // An attached database is reached as its own URL said, TLS included.
  if (database.ssl !== undefined) {
    if (database.ssl === false) delete connection.ssl
    else connection.ssl = database.ssl
  }
  return connection
}
