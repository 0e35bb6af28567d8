import type { Knex } from 'knex'

/** PostgreSQL's own databases, which initdb opens to PUBLIC: what `harden` closes. */
export const HARDENED_DATABASES = ['postgres', 'template1'] as const

/** A database every role may reach through PUBLIC, tenant roles included. */
export interface Exposure {
  database: string
  privileges: Array<'CONNECT' | 'TEMPORARY'>
  /** PostgreSQL's own (`postgres`, `template1`): `harden` closes these; others are not Silo's to change. */
  hardenable: boolean
}

export interface HardeningPlan {
  /** What `harden` revokes from PUBLIC. */
  revoke: Exposure[]
  /**
   * Login roles, other than superusers, the admin and Silo's own, that reach those databases
   * through PUBLIC only and would lose CONNECT (grant it to them again by hand if they need it).
   */
  losing: Array<{ role: string, database: string }>
}

/**
 * Databases (other than those that refuse all connections) where PUBLIC holds CONNECT or
 * TEMPORARY: every tenant role can connect there, and with TEMPORARY create temporary tables.
 * PostgreSQL grants both on every new database unless revoked; Silo revokes them on every
 * database it makes, and `harden` on PostgreSQL's own.
 */
export async function publicExposure (db: Knex): Promise<Exposure[]> {
  const { rows } = await db.raw<{ rows: Array<{ database: string, connect: boolean, temporary: boolean }> }>(`
    select datname as database,
           has_database_privilege('public', oid, 'CONNECT') as connect,
           has_database_privilege('public', oid, 'TEMPORARY') as temporary
    from pg_database where datallowconn order by datname`)
  return rows
    .filter((row) => row.connect || row.temporary)
    .map((row) => ({
      database: row.database,
      privileges: [...(row.connect ? ['CONNECT' as const] : []), ...(row.temporary ? ['TEMPORARY' as const] : [])],
      hardenable: (HARDENED_DATABASES as readonly string[]).includes(row.database)
    }))
}

/** What `harden` would change, read without changing anything. */
export async function planHardening (db: Knex): Promise<HardeningPlan> {
  const revoke = (await publicExposure(db)).filter((exposure) => exposure.hardenable)
  if (revoke.length === 0) return { revoke, losing: [] }
  // Login roles that are not superusers, not the admin, not Silo's (marked), and hold no CONNECT
  // of their own (a grant, or ownership) on the database: PUBLIC is their only way in.
  const { rows } = await db.raw<{ rows: Array<{ role: string, database: string }> }>(`
    select r.rolname as role, d.datname as database
    from pg_roles r cross join pg_database d
    where d.datname = any(?) and r.rolcanlogin and not r.rolsuper and r.rolname <> current_user and r.rolname !~ '^pg_'
      and coalesce(shobj_description(r.oid, 'pg_authid'), '') not like 'silo:%'
      and r.oid <> d.datdba
      and not exists (
        select 1 from aclexplode(d.datacl) acl
        where acl.grantee = r.oid and acl.privilege_type = 'CONNECT')
    order by d.datname, r.rolname`, [revoke.map((exposure) => exposure.database)])
  return { revoke, losing: rows }
}

/**
 * Revokes CONNECT and TEMPORARY from PUBLIC on PostgreSQL's own databases, so a tenant role
 * reaches its own database and nothing else. The admin role keeps CONNECT (granted to it by
 * name). Idempotent. A REVOKE by a role that does not own the database only warns, so the
 * result is read back: what is still open is an error that says what to run as a superuser.
 */
export async function harden (db: Knex, plan: HardeningPlan): Promise<void> {
  for (const { database } of plan.revoke) {
    await db.raw('REVOKE CONNECT, TEMPORARY ON DATABASE ?? FROM PUBLIC; GRANT CONNECT ON DATABASE ?? TO CURRENT_USER', [database, database])
  }
  const left = (await publicExposure(db)).filter((exposure) => exposure.hardenable)
  if (left.length > 0) {
    const names = left.map((exposure) => exposure.database)
    throw new Error(`The admin role may not change privileges on ${names.join(' and ')} (it does not own them). ` +
      `As a superuser, run: ${names.map((name) => `REVOKE CONNECT, TEMPORARY ON DATABASE ${name} FROM PUBLIC;`).join(' ')}`)
  }
}
