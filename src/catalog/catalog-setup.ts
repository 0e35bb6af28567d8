import knex, { type Knex } from 'knex'
import { knexConfig, type PgConnection } from '../db/knex-config.js'
import type { ServerAdmin } from '../db/server-admin.js'

/**
 * Creates the catalog database when missing (no other role may connect to it), migrates it
 * to the latest catalog schema, and returns a Knex pool on it.
 */
export async function openCatalog (admin: ServerAdmin, connection: PgConnection, version: string): Promise<Knex> {
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
