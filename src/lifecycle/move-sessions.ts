import pg from 'pg'
import type { TenantRecord } from '../catalog/catalog-store.js'
import { unreadableCredential } from '../catalog/catalog-store.js'
import { tenantUnavailable } from '../errors.js'
import type { ServerParts } from './server-fleet.js'

/** A move's sessions on the tenant's database, on either server, as the tenant's own role. */

/** The tenant's record as if it were on `server` (where the target is migrated). */
export function onServer (tenant: TenantRecord, server: ServerParts): TenantRecord {
  const { host, port, ssl } = server.connection
  return {
    ...tenant,
    server: { id: server.id, name: server.name, endpoint: { host, port, ...(ssl === undefined ? {} : { ssl }) }, version: server.serverVersion, budget: null },
    database: { ...tenant.database, host: null, port: null }
  }
}

/** A session on the tenant's database on `server`, as the tenant's role, reached at the server's admin address. */
export async function connect (server: ServerParts, tenant: TenantRecord, clients: pg.Client[]): Promise<pg.Client> {
  if (unreadableCredential(tenant) !== undefined) throw tenantUnavailable(`The credential of tenant ${tenant.slug} cannot be read here`)
  const { host, port, ssl } = server.connection
  const client = new pg.Client({
    host,
    port,
    ...(ssl === undefined ? {} : { ssl }),
    database: tenant.database.name,
    user: tenant.database.user,
    password: tenant.database.password,
    application_name: `silo-move:${tenant.slug}`,
    connectionTimeoutMillis: 5000
  })
  clients.push(client)
  client.on('error', () => {}) // a session ended under it fails its next query instead
  await client.connect()
  return client
}

export async function closeAll (clients: pg.Client[]): Promise<void> {
  await Promise.all(clients.splice(0).map(async (client) => { await client.end().catch(() => {}) }))
}

/**
 * Waits (at most `ms`) until no other session runs a statement in the source: requests admitted
 * just before the freeze reached their instance finish their writes (noted, and carried over by
 * the last catch-up) instead of queueing behind the lock and being ended at the switch.
 */
export async function quiesce (from: pg.Client, ms: number): Promise<void> {
  const until = performance.now() + ms
  while (performance.now() < until) {
    const { rows } = await from.query<{ busy: number }>(
      "select count(*)::int as busy from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and state = 'active'")
    if ((rows[0]?.busy ?? 0) === 0) return
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}
