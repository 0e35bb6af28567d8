import type { Knex } from 'knex'

/**
 * Every change to domains or tenants is announced on the `silo_catalog` channel, whoever makes
 * it (an instance, the CLI, a hand-written UPDATE), so each running instance can keep its
 * host index and caches exact instead of waiting for a TTL. A domain change names its tenant
 * (`id`) too: cached tenant records carry their domain list.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.raw(`
    create function silo_notify_domain() returns trigger language plpgsql as $$
    begin
      if tg_op in ('DELETE', 'UPDATE') then
        perform pg_notify('silo_catalog', json_build_object('kind', 'domain', 'op', 'delete', 'host', old.host, 'id', old.tenant_id)::text);
      end if;
      if tg_op in ('INSERT', 'UPDATE') then
        perform pg_notify('silo_catalog', json_build_object('kind', 'domain', 'op', 'insert', 'host', new.host, 'id', new.tenant_id)::text);
      end if;
      return null;
    end $$`)
  await knex.raw('create trigger domains_notify after insert or update or delete on domains for each row execute function silo_notify_domain()')
  await knex.raw(`
    create function silo_notify_tenant() returns trigger language plpgsql as $$
    begin
      perform pg_notify('silo_catalog', json_build_object('kind', 'tenant', 'id', coalesce(new.id, old.id))::text);
      return null;
    end $$`)
  await knex.raw('create trigger tenants_notify after update or delete on tenants for each row execute function silo_notify_tenant()')
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw('drop trigger tenants_notify on tenants')
  await knex.raw('drop function silo_notify_tenant()')
  await knex.raw('drop trigger domains_notify on domains')
  await knex.raw('drop function silo_notify_domain()')
}
