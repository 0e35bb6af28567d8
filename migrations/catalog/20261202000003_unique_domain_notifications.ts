import type { Knex } from 'knex'

/**
 * Every domain notification of a transaction is distinct: PostgreSQL delivers identical
 * payloads of one transaction only once, so an INSERT followed by an UPDATE of the same row
 * (insert, delete, insert) reached listeners as `insert, delete`, and the host dropped out of
 * every instance's domain index. Each payload now carries `seq`, its place among the domain
 * notifications of its transaction (a transaction-local counter: a hand-written UPDATE by
 * another role needs no privilege on a sequence, and a counter rolled back with a savepoint
 * goes with the notifications it numbered). Listeners ignore the field; its presence is what
 * matters.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.raw(`
    create or replace function silo_notify_domain() returns trigger language plpgsql as $$
    declare
      seq bigint;
    begin
      -- A custom setting reads '' (not null) once it has been set in the session before.
      seq := coalesce(nullif(current_setting('silo.domain_notify_seq', true), ''), '0')::bigint;
      if tg_op in ('DELETE', 'UPDATE') then
        seq := seq + 1;
        perform pg_notify('silo_catalog', json_build_object('kind', 'domain', 'op', 'delete', 'host', old.host, 'id', old.tenant_id, 'seq', seq)::text);
      end if;
      if tg_op in ('INSERT', 'UPDATE') then
        seq := seq + 1;
        perform pg_notify('silo_catalog', json_build_object('kind', 'domain', 'op', 'insert', 'host', new.host, 'id', new.tenant_id, 'seq', seq)::text);
      end if;
      perform set_config('silo.domain_notify_seq', seq::text, true);
      return null;
    end $$`)
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw(`
    create or replace function silo_notify_domain() returns trigger language plpgsql as $$
    begin
      if tg_op in ('DELETE', 'UPDATE') then
        perform pg_notify('silo_catalog', json_build_object('kind', 'domain', 'op', 'delete', 'host', old.host, 'id', old.tenant_id)::text);
      end if;
      if tg_op in ('INSERT', 'UPDATE') then
        perform pg_notify('silo_catalog', json_build_object('kind', 'domain', 'op', 'insert', 'host', new.host, 'id', new.tenant_id)::text);
      end if;
      return null;
    end $$`)
}
