import type { Knex } from 'knex'

/**
 * Attached tenants (`tenants attach`): a database Silo did not create, reached by a connection
 * string, on any server, registered or not.
 *
 * - `attached`: Silo neither made nor owns its database and role. Dropping such a tenant only
 *   forgets it (unless told `--drop-database`), `doctor` never counts its database among this
 *   catalog's objects, and nothing marks it.
 * - `schema_managed`: false when it was attached with `--no-migrate`; fleet migrations and the
 *   schema guard then leave it alone.
 * - Its own host and port are in `db_host`/`db_port` and its TLS setting (from the URL's
 *   `sslmode`) in `db_ssl`: it is reached exactly where its URL said. `server_id` is the
 *   registered server at that address, or null when there is none (its connections then count
 *   against a budget of their own, see src/tenancy/server-budgets.ts).
 * - Database and role names are unique among the tenants Silo makes, as before (the prefix makes
 *   them so); an attached database is unique by its address and name. Two attached tenants may
 *   log in with one role (a role of someone else's), never with a Silo-made one (the attach
 *   checks its mark).
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('tenants', (table) => {
    table.boolean('attached').notNullable().defaultTo(false)
    table.boolean('schema_managed').notNullable().defaultTo(true)
    table.jsonb('db_ssl')
  })
  await knex.raw('alter table tenants alter column server_id drop not null')
  await knex.raw(`alter table tenants add constraint tenants_server_check
    check (server_id is not null or (attached and db_host is not null and db_port is not null))`)
  await knex.raw('alter table tenants add constraint tenants_schema_managed_check check (schema_managed or attached)')
  await knex.raw('alter table tenants drop constraint tenants_db_name_unique')
  await knex.raw('alter table tenants drop constraint tenants_db_user_unique')
  await knex.raw('create unique index tenants_db_name_unique on tenants (db_name) where not attached')
  await knex.raw('create unique index tenants_db_user_unique on tenants (db_user) where not attached')
  await knex.raw('create unique index tenants_attached_database_unique on tenants (db_host, db_port, db_name) where attached')
}

export async function down (knex: Knex): Promise<void> {
  const attached = await knex('tenants').where({ attached: true }).count<Array<{ count: string }>>('* as count')
  if (Number(attached[0]?.count ?? 0) > 0) {
    throw new Error('The catalog holds attached tenants: drop (detach) them before rolling this migration back')
  }
  await knex.raw('drop index tenants_attached_database_unique')
  await knex.raw('drop index tenants_db_user_unique')
  await knex.raw('drop index tenants_db_name_unique')
  await knex.raw('alter table tenants add constraint tenants_db_name_unique unique (db_name)')
  await knex.raw('alter table tenants add constraint tenants_db_user_unique unique (db_user)')
  await knex.raw('alter table tenants drop constraint tenants_schema_managed_check')
  await knex.raw('alter table tenants drop constraint tenants_server_check')
  await knex.raw('alter table tenants alter column server_id set not null')
  await knex.schema.alterTable('tenants', (table) => {
    table.dropColumn('db_ssl')
    table.dropColumn('schema_managed')
    table.dropColumn('attached')
  })
}
