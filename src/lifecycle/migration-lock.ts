import type { Knex } from 'knex'
import { isUndefinedTable } from '../db/sqlstate.js'

/**
 * Silo's advisory locks in a tenant's own database, in PostgreSQL's two-key form (pg_locks shows
 * them as classid, objid): the migration lock, held by the one Silo migration of that database,
 * and the queue, held shared by the Silo migrations waiting for it.
 */
const SILO_LOCK_SPACE = 0x5115
const MIGRATING = 1
const QUEUED = 2

/** How often a migration waiting for another of the same database tries the lock again. */
const RETRY_MS = 100

/**
 * Runs `fn` (a knex migration or rollback) as the only Silo migration of `db`'s database, after
 * clearing knex's own migration lock if a migrator that died left it set.
 *
 * Knex marks its lock in a table (`knex_migrations_lock.is_locked`). When every pending migration
 * runs in a transaction, the mark is made in the batch's transaction: a kill rolls it back, and a
 * second migrator waits on the row. When one of them runs outside a transaction
 * (`config.transaction = false`, as CREATE INDEX CONCURRENTLY needs), the mark is committed on its
 * own and cleared at the end: a migrator killed in between leaves it set, and every later migration
 * of that database fails with "Migration table is already locked" until someone runs
 * `knex migrate:unlock` by hand; a second migration meanwhile (a single-tenant migrate beside a
 * fleet run) fails the same way.
 *
 * Here Silo's migrations of a database take an advisory lock there first, one at a time: a second
 * one waits for the first, and a migrator that dies lets go with its session. Holding it, a knex
 * mark that is set belongs to no live Silo migration, and is cleared, unless something else
 * connected to the database could be migrating: any session but Silo's request pools
 * (`silo:<slug>`) and Silo migrations queued for the lock. A killed migrator whose backend still
 * runs its last statement, an older Silo, or knex run by hand keep their mark, and the migration
 * fails as knex says, as before.
 *
 * `db` must have a pool of one connection (withTenantDatabase's): the session that takes the
 * advisory lock is the one knex migrates on.
 */
export async function withMigrationLock<T> (db: Knex, fn: () => Promise<T>): Promise<T> {
  await takeMigrationLock(db)
  try {
    await freeAbandonedKnexLock(db)
    return await fn()
  } finally {
    // A broken session has let go already; the connection is closed with its Knex right after.
    await db.raw('select pg_advisory_unlock(?, ?)', [SILO_LOCK_SPACE, MIGRATING]).catch(() => {})
  }
}

/**
 * Takes the migration lock, trying again every RETRY_MS while another migration holds it, in the
 * queue meanwhile. Not a blocking `pg_advisory_lock`: a session waiting in it is a transaction, which
 * a CREATE INDEX CONCURRENTLY of the migration holding the lock waits for, and PostgreSQL ends
 * the two waits as a deadlock. Between tries this session has no transaction open.
 */
async function takeMigrationLock (db: Knex): Promise<void> {
  const tryLock = async (): Promise<boolean> => {
    const { rows } = await db.raw<{ rows: Array<{ locked: boolean }> }>('select pg_try_advisory_lock(?, ?) as locked', [SILO_LOCK_SPACE, MIGRATING])
    return rows[0]?.locked === true
  }
  if (await tryLock()) return
  await db.raw('select pg_advisory_lock_shared(?, ?)', [SILO_LOCK_SPACE, QUEUED])
  try {
    while (!(await tryLock())) await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
  } finally {
    await db.raw('select pg_advisory_unlock_shared(?, ?)', [SILO_LOCK_SPACE, QUEUED]).catch(() => {})
  }
}

/**
 * Clears knex's mark when it is set and nothing connected to the database could hold it (see
 * withMigrationLock), in one statement: cleared only if, as it runs, every other client session of
 * this database is a request pool's or a Silo migration queued for the lock (autovacuum workers have
 * no user). A mark that is not set matches no row: nothing is written.
 */
async function freeAbandonedKnexLock (db: Knex): Promise<void> {
  try {
    await db.raw(`
      update knex_migrations_lock set is_locked = 0
      where is_locked = 1 and not exists (
        select 1 from pg_stat_activity a
        where a.datname = current_database() and a.pid <> pg_backend_pid() and a.usesysid is not null
          and coalesce(a.application_name, '') not like 'silo:%'
          and not exists (
            select 1 from pg_locks l
            where l.pid = a.pid and l.locktype = 'advisory' and l.granted and l.mode = 'ShareLock'
              and l.database = (select oid from pg_database where datname = current_database())
              and l.classid = ? and l.objid = ? and l.objsubid = 2
          )
      )`, [SILO_LOCK_SPACE, QUEUED])
  } catch (error) {
    // Never migrated: knex makes the table on its first run.
    if (!isUndefinedTable(error)) throw error
  }
}
