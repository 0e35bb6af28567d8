import knex, { type Knex } from 'knex'
import { SiloError } from '../errors.js'
import { knexConfig, type PgConnection } from '../db/knex-config.js'
import { databaseMark } from '../db/object-marks.js'
import type { ServerAdmin } from '../db/server-admin.js'

/**
 * Creates the catalog database when missing (no other role may connect to it), migrates it
 * to the latest catalog schema, and returns a Knex pool on it. `admin` is on the catalog's
 * server, `tenantServer` on the tenants' (the same one unless CATALOG_DATABASE_URL is set).
 */
export async function openCatalog (admin: ServerAdmin, connection: PgConnection, version: string, tenantServer: ServerAdmin = admin): Promise<Knex> {
  if (!(await admin.databaseExists(connection.database))) await refuseOverLostTenants(tenantServer, connection.database)
  await admin.ensurePrivateDatabase(connection.database)
  const db = knex(knexConfig({
    schema: 'catalog',
    connection: { ...connection, connectionTimeoutMillis: 3000 },
    pool: { min: 0, max: 10, acquireTimeoutMillis: 5000 },
    version,
    // Failures reach callers as errors (CATALOG_UNAVAILABLE, logged once); knex's own console
    // copy of each, with its SQL, would bypass the logger.
    quiet: true
  }))
  try {
    await db.migrate.latest()
  } catch (error) {
    await db.destroy()
    throw error
  }
  return db
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
  throw new SiloError('CATALOG_MISSING', 500,
    `The catalog database ${catalogDatabase} does not exist, but ${lost.length} tenant database${lost.length === 1 ? '' : 's'} on the server ` +
    `carry its mark (${named}): it was dropped, renamed or moved. Restore it (from a backup, or point CATALOG_DATABASE or ` +
    'CATALOG_DATABASE_URL at it) and start again. Silo does not create an empty catalog over them; nothing was created or dropped.')
}
