import knex from 'knex'
import type { Config } from '../config.js'
import { connectionFromUrl, knexConfig } from '../db/knex-config.js'
import { ServerAdmin } from '../db/server-admin.js'

/**
 * Drops everything a throwaway Silo (a test's, a benchmark's) may have created on the server at
 * `databaseUrl`: its tenant databases and roles, named with its prefix, then its catalog. Drops
 * unchecked (no ownership asked), closing open connections: only for names made for the run.
 */
export async function dropSiloDatabases (databaseUrl: string, names: Pick<Config, 'catalogDatabase' | 'tenantDbPrefix'>): Promise<void> {
  const db = knex(knexConfig({ connection: connectionFromUrl(databaseUrl), pool: { min: 0, max: 1 } }))
  try {
    const admin = new ServerAdmin(db)
    for (const name of await admin.listDatabases(names.tenantDbPrefix)) await admin.dropDatabaseUnchecked(name)
    for (const name of await admin.listRoles(names.tenantDbPrefix)) await admin.dropRoleUnchecked(name)
    await admin.dropDatabaseUnchecked(names.catalogDatabase)
  } finally {
    await db.destroy()
  }
}
