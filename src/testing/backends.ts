import type { Knex } from 'knex'
import { tenantDatabaseName } from '../lifecycle/tenant-names.js'
import type { Silo } from '../silo.js'

/** Which sessions of pg_stat_activity count as a Silo's tenant backends. */
export interface BackendFilter {
  /** Only these tenants' databases; every database named with the Silo's tenant prefix otherwise. */
  slugs?: readonly string[]
  /**
   * Only sessions logged in as the database's own role (`usename = datname`), that is a tenant
   * pool's: a create's hand-over session (the admin, in the new database) is closed without
   * waiting for the server and may still be listed a moment later.
   */
  ownRole?: boolean
  /** Only sessions whose application_name is LIKE this pattern (`silo:%`: tenant pools). */
  applicationName?: string
  /** Not sessions whose application_name is LIKE this pattern (`silo-migrate:%`). */
  notApplicationName?: string
}

/**
 * A Silo's tenant pool sessions: logged in as the tenant's own role (a create's hand-over
 * session, the admin's, may linger a moment after it is let go), migrations left out. A test
 * that waits for a request's query to run must count these only, or the lingering session of
 * the tenant's create may pass for it.
 */
export const POOL_SESSIONS: BackendFilter = { ownRole: true, notApplicationName: 'silo-migrate:%' }

/** Backends PostgreSQL has open to a Silo's tenant databases, as it sees them, by database name. */
export async function tenantBackendsByDatabase (silo: Silo, filter: BackendFilter = {}): Promise<Map<string, number>> {
  const rows = await query(silo, filter).groupBy('datname').select('datname').count<Array<{ datname: string, count: string }>>('* as count')
  return new Map(rows.map((row) => [row.datname, Number(row.count)]))
}

/** Backends PostgreSQL has open to a Silo's tenant databases, as it sees them, in all. */
export async function countTenantBackends (silo: Silo, filter: BackendFilter = {}): Promise<number> {
  const rows = await query(silo, filter).count<Array<{ count: string }>>('* as count')
  return Number(rows[0]?.count ?? 0)
}

function query (silo: Silo, filter: BackendFilter): Knex.QueryBuilder {
  const sessions = silo.admin.knex('pg_stat_activity')
  if (filter.slugs !== undefined) sessions.whereIn('datname', filter.slugs.map((slug) => tenantDatabaseName(silo.config.tenantDbPrefix, slug)))
  else sessions.whereLike('datname', `${silo.config.tenantDbPrefix.replaceAll('_', '\\_')}%`)
  if (filter.ownRole === true) sessions.whereRaw('usename = datname')
  if (filter.applicationName !== undefined) sessions.whereLike('application_name', filter.applicationName)
  if (filter.notApplicationName !== undefined) sessions.whereNot('application_name', 'like', filter.notApplicationName)
  return sessions
}

/** Which sessions count as waiting, for `countWaitingBackends`. */
export interface WaitFilter {
  /** The database the sessions are on. */
  database: string
  /** pg_stat_activity.wait_event_type, say `Lock`. */
  waitEventType?: string
  /** pg_stat_activity.wait_event, say `advisory`. */
  waitEvent?: string
  /** Only sessions whose application_name is LIKE this pattern (`silo:%`: tenant pools). */
  applicationName?: string
}

/**
 * Sessions on a database waiting on something, asked through `db`: that connection must not be
 * inside a transaction, whose view of pg_stat_activity stays the snapshot it first took.
 */
export async function countWaitingBackends (db: Knex, filter: WaitFilter): Promise<number> {
  const sessions = db('pg_stat_activity').where({ datname: filter.database })
  if (filter.waitEventType !== undefined) sessions.where({ wait_event_type: filter.waitEventType })
  if (filter.waitEvent !== undefined) sessions.where({ wait_event: filter.waitEvent })
  if (filter.applicationName !== undefined) sessions.whereLike('application_name', filter.applicationName)
  const rows = await sessions.count<Array<{ count: string }>>('* as count')
  return Number(rows[0]?.count ?? 0)
}
