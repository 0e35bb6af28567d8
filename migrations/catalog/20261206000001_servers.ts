import type { Knex } from 'knex'

/**
 * The PostgreSQL servers tenant databases live on (see src/catalog/server-store.ts).
 *
 * - `default` is the server of DATABASE_URL: its `admin_url` stays null, each process uses its
 *   own DATABASE_URL for it (a password rotated there needs no catalog change). Every existing
 *   tenant is placed on it, so a catalog from before servers keeps working unchanged.
 * - Any other server has its admin URL sealed like tenant credentials (`v2:<key id>:...`, under
 *   the catalog's key, checked by the same trigger as tenant credentials; `tenants rekey`
 *   re-encrypts it too). `tenant_host`/`tenant_port` are where tenant pools connect when that
 *   differs from the admin URL's (a pooler in front of the server).
 * - `server_version` is the PostgreSQL version last seen there, so tenant pools skip knex's probe.
 * - A tenant's server cannot be removed while it holds the tenant (`on delete restrict`).
 * - A change of a server is announced on `silo_catalog` (`{ kind: 'server', id }`), so running
 *   instances see a drain, a resume or a new endpoint at once.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('servers', (table) => {
    table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'))
    table.text('name').notNullable().unique()
    table.text('admin_url')
    table.text('tenant_host')
    table.integer('tenant_port')
    table.text('status').notNullable().defaultTo('active')
    table.integer('max_tenants')
    table.integer('weight').notNullable().defaultTo(1)
    table.integer('connection_budget')
    table.text('server_version')
    table.timestamps(true, true)
  })
  await knex.raw('alter table servers add constraint servers_name_check check (name ~ \'^[a-z][a-z0-9-]{1,39}$\')')
  await knex.raw('alter table servers add constraint servers_status_check check (status in (\'active\', \'draining\', \'disabled\'))')
  await knex.raw('alter table servers add constraint servers_tenant_port_check check (tenant_port between 1 and 65535)')
  await knex.raw('alter table servers add constraint servers_max_tenants_check check (max_tenants > 0)')
  await knex.raw('alter table servers add constraint servers_weight_check check (weight between 1 and 1000)')
  await knex.raw('alter table servers add constraint servers_connection_budget_check check (connection_budget > 0)')
  // Only `default` takes its admin URL from each process's DATABASE_URL.
  await knex.raw('alter table servers add constraint servers_admin_url_check check ((name = \'default\') = (admin_url is null))')
  await knex('servers').insert({ name: 'default' })

  await knex.schema.alterTable('tenants', (table) => {
    table.uuid('server_id').references('id').inTable('servers').onDelete('RESTRICT')
    table.index(['server_id'])
  })
  await knex.raw('update tenants set server_id = (select id from servers where name = \'default\')')
  await knex.raw('alter table tenants alter column server_id set not null')

  await knex.raw(`
    create function silo_check_server_key() returns trigger language plpgsql as $$
    declare
      catalog_key text;
    begin
      if new.admin_url like 'v2:%' then
        select key_id into catalog_key from catalog_identity;
        if catalog_key is not null and split_part(new.admin_url, ':', 2) <> catalog_key then
          raise exception 'server admin URL sealed with key id % but the catalog''s credentials are under key id %',
            split_part(new.admin_url, ':', 2), catalog_key
            using hint = 'the credential key was rotated: retry, or restart this process with the new SECRET_KEY';
        end if;
      end if;
      return new;
    end $$`)
  await knex.raw(`create trigger servers_credential_key before insert or update of admin_url on servers
    for each row execute function silo_check_server_key()`)

  await knex.raw(`
    create function silo_notify_server() returns trigger language plpgsql as $$
    begin
      if tg_op = 'UPDATE' and coalesce(current_setting('silo.rekey', true), '') = 'on'
         and (to_jsonb(old) - 'admin_url') = (to_jsonb(new) - 'admin_url') then
        return null;
      end if;
      perform pg_notify('silo_catalog', json_build_object('kind', 'server', 'id', coalesce(new.id, old.id))::text);
      return null;
    end $$`)
  await knex.raw('create trigger servers_notify after insert or update or delete on servers for each row execute function silo_notify_server()')
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw('drop trigger servers_notify on servers')
  await knex.raw('drop function silo_notify_server()')
  await knex.raw('drop trigger servers_credential_key on servers')
  await knex.raw('drop function silo_check_server_key()')
  await knex.schema.alterTable('tenants', (table) => {
    table.dropColumn('server_id')
  })
  await knex.schema.dropTable('servers')
}
