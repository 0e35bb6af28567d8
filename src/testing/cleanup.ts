import knex from 'knex'
import pLimit from 'p-limit'
import type { Config } from '../config.js'
import { connectionFromUrl, knexConfig } from '../db/knex-config.js'
import { ServerAdmin } from '../db/server-admin.js'

/** A prefix made for one run: two letters and a random hex id (a test's `st1a2b3c4d_`, the bench's `sb1a2b3c_`, the OpenAPI script's `oa1a2b3c4d_`). */
const THROWAWAY_PREFIX = /^[a-z]{2}[0-9a-f]{6,}_$/
/** Its catalog: `silo_<what>_<hex id>`, or a name that starts with its prefix. */
const THROWAWAY_CATALOG = /^silo_[a-z]+_[0-9a-f]{6,}$/

/**
 * Throws unless the names are ones a run makes for itself: never the shipped defaults
 * (`silo_catalog`, `silo_`), another catalog, or the server's own databases.
 */
export function assertThrowaway ({ catalogDatabase, tenantDbPrefix }: Pick<Config, 'catalogDatabase' | 'tenantDbPrefix'>): void {
  const catalogMade = THROWAWAY_CATALOG.test(catalogDatabase) || (catalogDatabase.startsWith(tenantDbPrefix) && catalogDatabase.length > tenantDbPrefix.length)
  if (!THROWAWAY_PREFIX.test(tenantDbPrefix) || !catalogMade) {
    throw new Error(`refusing to drop ${catalogDatabase} and ${tenantDbPrefix}*: not names made for a throwaway run`)
  }
}

/**
 * Drops everything a throwaway Silo (a test's, a benchmark's) may have created on the server at
 * `databaseUrl`: its tenant databases and roles, named with its prefix, then its catalog. Drops
 * unchecked (no ownership asked), closing open connections: only for names made for the run (assertThrowaway refuses others).
 * `concurrency` databases at a time: on a server with fsync on, each DROP DATABASE waits for a
 * checkpoint, and drops waiting together share one (a benchmark's thousand tenant databases take
 * minutes one by one).
 */
export async function dropSiloDatabases (databaseUrl: string, names: Pick<Config, 'catalogDatabase' | 'tenantDbPrefix'>, concurrency = 1): Promise<void> {
  assertThrowaway(names)
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
