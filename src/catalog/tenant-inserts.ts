import type { Knex } from 'knex'
import type { PgConnection } from '../db/knex-config.js'
import { isUniqueViolation } from '../db/sqlstate.js'
import { SiloError } from '../errors.js'
import type { CredentialCipher } from './credential-cipher.js'
import type { TenantRow } from './tenant-records.js'

/*
 * New tenant entries, made and attached: each inserted with its domains in one statement (a taken
 * slug, domain or database is a CatalogConflict), and the SQL fragments the catalog's tenant
 * queries share. CatalogStore turns the rows into records.
 */

export interface NewTenant {
  slug: string
  name: string
  /** The server its database goes on (placement's choice); `default` when not given. */
  serverId?: string
  databaseName: string
  databaseUser: string
  password: string
  domains: string[]
}

/** A database Silo did not create, to be served as a tenant (see src/lifecycle/tenant-attacher.ts). */
export interface NewAttachedTenant {
  slug: string
  name: string
  /** The registered server at its address, if any. */
  serverId: string | null
  host: string
  port: number
  ssl: PgConnection['ssl'] | undefined
  databaseName: string
  databaseUser: string
  password: string
  schemaManaged: boolean
  domains: string[]
}

/** The tenant's domains, primary first, as one array column of a tenants query. */
export const DOMAINS_OF_TENANT = 'coalesce((select array_agg(d.host order by d.is_primary desc, d.host) from domains d where d.tenant_id = tenants.id), \'{}\') as domains'
/** Whether a move's write freeze is on now, by the catalog's clock (every instance reads the same clock). */
export const FROZEN_NOW = 'coalesce(tenants.frozen_until > now(), false) as frozen'
/** Its server's name and endpoint, as columns of a tenants query joined with `servers`. */
export const SERVER_OF_TENANT = ['servers.name as server_name', 'servers.admin_url as server_admin_url', 'servers.tenant_host as server_tenant_host',
  'servers.tenant_port as server_tenant_port', 'servers.server_version as server_version', 'servers.connection_budget as server_connection_budget']

/** Unique violation on the catalog; `constraint` tells a taken slug from a taken domain. */
export class CatalogConflict extends Error {
  constructor (readonly what: 'slug' | 'domain' | 'database', readonly value: string) {
    super(`${what} already taken: ${value}`)
  }

  /** The contract's refusal: DOMAIN_TAKEN, SLUG_TAKEN, or for a database name `database` (default SLUG_TAKEN: a create's database is named for its slug). */
  refusal (database = (): SiloError => new SiloError('SLUG_TAKEN', `Database ${this.value} is taken`)): SiloError {
    if (this.what === 'domain') return new SiloError('DOMAIN_TAKEN', `Domain ${this.value} is taken`)
    if (this.what === 'slug') return new SiloError('SLUG_TAKEN', `Slug ${this.value} is taken`)
    return database()
  }
}

/** Inserts the tenant (status provisioning) and its domains, the first one primary, in one statement. */
export async function insertTenantRow (knex: Knex, cipher: CredentialCipher, tenant: NewTenant): Promise<TenantRow> {
  try {
    const { rows } = await knex.raw<{ rows: TenantRow[] }>(`
      with tenant as (
        insert into tenants (slug, name, status, server_id, db_name, db_user, db_password)
        values (?, ?, 'provisioning', coalesce(?::uuid, (select id from servers where name = 'default')), ?, ?, ?) returning *
      ), domain as (
        insert into domains (host, tenant_id, is_primary)
        select host, (select id from tenant), position = 1 from unnest(?::text[]) with ordinality as given (host, position)
      )
      select tenant.*, ${SERVER_OF_TENANT.join(', ')} from tenant join servers on servers.id = tenant.server_id`, [
      tenant.slug, tenant.name, tenant.serverId ?? null, tenant.databaseName, tenant.databaseUser, cipher.encrypt(tenant.password), tenant.domains
    ])
    const row = rows[0]
    if (row === undefined) throw new Error('insert returned no row')
    return { ...row, domains: tenant.domains }
  } catch (error) {
    throw toConflict(error, tenant)
  }
}

/** Inserts an attached tenant (status provisioning until its migrations ran) and its domains, the first one primary. */
export async function insertAttachedTenantRow (knex: Knex, cipher: CredentialCipher, tenant: NewAttachedTenant): Promise<TenantRow> {
  try {
    const { rows } = await knex.raw<{ rows: TenantRow[] }>(`
      with tenant as (
        insert into tenants (slug, name, status, server_id, attached, schema_managed, db_host, db_port, db_ssl, db_name, db_user, db_password)
        values (?, ?, 'provisioning', ?::uuid, true, ?, ?, ?, ?::jsonb, ?, ?, ?) returning *
      ), domain as (
        insert into domains (host, tenant_id, is_primary)
        select host, (select id from tenant), position = 1 from unnest(?::text[]) with ordinality as given (host, position)
      )
      select tenant.*, ${SERVER_OF_TENANT.join(', ')} from tenant left join servers on servers.id = tenant.server_id`, [
      tenant.slug, tenant.name, tenant.serverId, tenant.schemaManaged, tenant.host, tenant.port, JSON.stringify(tenant.ssl ?? false),
      tenant.databaseName, tenant.databaseUser, cipher.encrypt(tenant.password), tenant.domains
    ])
    const row = rows[0]
    if (row === undefined) throw new Error('insert returned no row')
    return { ...row, domains: tenant.domains }
  } catch (error) {
    throw toConflict(error, tenant)
  }
}

function toConflict (error: unknown, tenant: Pick<NewTenant, 'slug' | 'domains' | 'databaseName'>): unknown {
  if (!isUniqueViolation(error)) return error
  const constraint = (error as { constraint?: string }).constraint ?? ''
  if (constraint.startsWith('domains')) {
    const detail = (error as { detail?: string }).detail ?? ''
    const host = tenant.domains.find((domain) => detail.includes(`(${domain})`)) ?? tenant.domains.join(', ')
    return new CatalogConflict('domain', host)
  }
  if (constraint === 'tenants_slug_unique') return new CatalogConflict('slug', tenant.slug)
  return new CatalogConflict('database', tenant.databaseName)
}
