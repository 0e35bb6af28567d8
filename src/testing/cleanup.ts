import knex from 'knex'
import pLimit from 'p-limit'
import type { Config } from '../config.js'
import { connectionFromUrl, knexConfig } from '../db/knex-config.js'
import { ServerAdmin } from '../db/server-admin.js'

/**
 * Drops everything a throwaway Silo (a test's, a benchmark's) may have created on the server at
 * `databaseUrl`: its tenant databases and roles, named with its prefix, then its catalog. Drops
 * unchecked (no ownership asked), closing open connections: only for names made for the run.
 * `concurrency` databases at a time: on a server with fsync on, each DROP DATABASE waits for a
 * checkpoint, and drops waiting together share one (a benchmark's thousand tenant databases take
 * minutes one by one).
 */
export async function dropSiloDatabases (databaseUrl: string, names: Pick<Config, 'catalogDatabase' | 'tenantDbPrefix'>, concurrency = 1): Promise<void> {
  const db = knex(knexConfig({ connection: connectionFromUrl(databaseUrl), pool: { min: 0, max: concurrency } }))
  try {
    const admin = new ServerAdmin(db)
    const limit = pLimit(concurrency)
    const drops = await Promise.allSettled((await admin.listDatabases(names.tenantDbPrefix)).map(async (name) => await limit(async () => { await admin.dropDatabaseUnchecked(name) })))
    const failed = drops.find((drop) => drop.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    for (const name of await admin.listRoles(names.tenantDbPrefix)) await admin.dropRoleUnchecked(name)
    await admin.dropDatabaseUnchecked(names.catalogDatabase)
  } finally {
    await db.destroy()
  }
}
