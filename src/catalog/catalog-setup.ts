import knex, { type Knex } from 'knex'
import PgClient from 'knex/lib/dialects/postgres/index.js'
import { catalogBusy, SiloError } from '../errors.js'
import { knexConfig, type PgConnection } from '../db/knex-config.js'
import { databaseMark } from '../db/object-marks.js'
import type { ServerAdmin } from '../db/server-admin.js'

/** Connections of the catalog pool, which runs every catalog query of a process. */
export const CATALOG_POOL_MAX = 10
/**
 * Connections of the catalog lock pool: how many locked catalog operations (admin and CLI
 * changes of tenants, spares being made) one process runs at once; the next ones wait for a
 * connection. Well below CATALOG_POOL_MAX, so that while that many operations wait on
 * something, host look-ups and readiness checks still find catalog connections.
 */
export const CATALOG_LOCK_POOL_MAX = 4
/** Longest wait for a connection of the catalog pool (host look-ups, readiness, queries) before CATALOG_BUSY. */
const CATALOG_ACQUIRE_TIMEOUT_MS = 5000
/**
 * Longest wait for a lock connection before CATALOG_BUSY: an operation queued behind others
 * (creates cloning a large template, a fleet of suspends) waits its turn for this long; a host
 * look-up never queues here, so it keeps its short timeout.
 */
const CATALOG_LOCK_ACQUIRE_TIMEOUT_MS = 30000

/** The catalog database's two pools: `db` for queries, `locks` only for advisory locks (see CatalogStore). */
export interface CatalogPools {
  db: Knex
  locks: Knex
}

/**
 * Knex's PostgreSQL client for the catalog: a wait for a catalog connection that times out is
 * CATALOG_BUSY, not knex's generic timeout, which the error handler would take for a tenant's
 * TENANT_BUSY.
 */
class CatalogPgClient extends PgClient {
  override async acquireConnection (): Promise<unknown> {
    try {
      return await super.acquireConnection() as unknown
    } catch (error) {
      if ((error as { name?: string }).name === 'KnexTimeoutError') throw catalogBusy(error)
      throw error
    }
  }
}

/**
 * Creates the catalog database when missing (no other role may connect to it), migrates it
 * to the latest catalog schema, and returns its pools. `admin` is on the catalog's server,
 * `tenantServer` on the tenants' (the same one unless CATALOG_DATABASE_URL is set).
 */
export async function openCatalog (admin: ServerAdmin, connection: PgConnection, serverVersion: string, tenantServer: ServerAdmin = admin): Promise<CatalogPools> {
  if (!(await admin.databaseExists(connection.database))) await refuseOverLostTenants(tenantServer, connection.database)
  await admin.ensurePrivateDatabase(connection.database)
  const pool = (max: number, acquireTimeoutMillis: number, applicationName?: string): Knex => knex(knexConfig({
    schema: 'catalog',
    client: CatalogPgClient,
    connection: { ...connection, connectionTimeoutMillis: 3000, ...(applicationName === undefined ? {} : { application_name: applicationName }) },
    pool: { min: 0, max, acquireTimeoutMillis },
    serverVersion,
    // Failures reach callers as errors (CATALOG_UNAVAILABLE, logged once); knex's own console
    // copy of each, with its SQL, would bypass the logger.
    quiet: true
  }))
  const db = pool(CATALOG_POOL_MAX, CATALOG_ACQUIRE_TIMEOUT_MS)
  try {
    await db.migrate.latest()
  } catch (error) {
    await db.destroy()
    throw error
  }
  // Named apart, so the sessions holding locks can be told from the others in pg_stat_activity.
  return { db, locks: pool(CATALOG_LOCK_POOL_MAX, CATALOG_LOCK_ACQUIRE_TIMEOUT_MS, 'silo-locks') }
}

/**
 * A missing catalog is created, unless tenant databases on the server carry the mark of a
 * catalog of that name: then the catalog was dropped, renamed or moved, and an empty one in its
 * place would serve none of them (and refuse their names to new tenants). Nothing is created or
 * dropped; the operator is told what happened and what to do.
 */
async function refuseOverLostTenants (tenantServer: ServerAdmin, catalogDatabase: string): Promise<void> {
  const lost = (await tenantServer.listDatabaseObjects())
    .filter((database) => {
      const mark = databaseMark(database)
      return mark?.kind === 'tenant' && mark.catalogDatabase === catalogDatabase
    })
    .map((database) => database.name)
  if (lost.length === 0) return
  const named = lost.length > 5 ? `${lost.slice(0, 5).join(', ')} and ${lost.length - 5} more` : lost.join(', ')
  throw new SiloError('CATALOG_MISSING',
    `The catalog database ${catalogDatabase} does not exist, but ${lost.length} tenant database${lost.length === 1 ? '' : 's'} on the server ` +
    `carry its mark (${named}): it was dropped, renamed or moved. Restore it (from a backup, or point CATALOG_DATABASE or ` +
    'CATALOG_DATABASE_URL at it) and start again. Silo does not create an empty catalog over them; nothing was created or dropped.')
}
