import type { Knex } from 'knex'

/**
 * Which key the tenant credentials are encrypted with (see src/catalog/catalog-key.ts).
 *
 * - `catalog_identity.key_id`: the id (a fingerprint, not the key) of the key every stored
 *   credential is under. Null until the first start with this column records it. A process
 *   holding neither that key nor, during a rotation, the one before refuses to start.
 * - A change of it is announced on `silo_catalog` as `{ kind: 'key', keyId }`, so running
 *   instances learn of a rotation (and say so when they lack the new key).
 * - A credential written in the v2 format must name the catalog's key: a process that missed
 *   a rotation cannot store a credential no one else can read (it gets an error instead).
 * - `tenants rekey` rewrites every credential in one transaction with `silo.rekey` set: those
 *   rows are not announced one by one (the passwords did not change, so cached tenants stay
 *   valid, and a per-row flood would make every instance re-read every tenant at once).
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('catalog_identity', (table) => {
    table.text('key_id')
  })

  await knex.raw(`
    create function silo_notify_key() returns trigger language plpgsql as $$
    begin
      perform pg_notify('silo_catalog', json_build_object('kind', 'key', 'keyId', new.key_id)::text);
      return null;
    end $$`)
  await knex.raw(`create trigger catalog_identity_notify_key after update of key_id on catalog_identity
    for each row when (old.key_id is distinct from new.key_id) execute function silo_notify_key()`)

  await knex.raw(`
    create function silo_check_credential_key() returns trigger language plpgsql as $$
    declare
      catalog_key text;
    begin
      if new.db_password like 'v2:%' then
        select key_id into catalog_key from catalog_identity;
        if catalog_key is not null and split_part(new.db_password, ':', 2) <> catalog_key then
          raise exception 'tenant credential sealed with key id % but the catalog''s credentials are under key id %',
            split_part(new.db_password, ':', 2), catalog_key
            using hint = 'the credential key was rotated: retry, or restart this process with the new SECRET_KEY';
        end if;
      end if;
      return new;
    end $$`)
  await knex.raw(`create trigger tenants_credential_key before insert or update of db_password on tenants
    for each row execute function silo_check_credential_key()`)

  await knex.raw(`
    create or replace function silo_notify_tenant() returns trigger language plpgsql as $$
    begin
      if tg_op = 'UPDATE' and coalesce(current_setting('silo.rekey', true), '') = 'on'
         and (to_jsonb(old) - 'db_password') = (to_jsonb(new) - 'db_password') then
        return null;
      end if;
      perform pg_notify('silo_catalog', json_build_object('kind', 'tenant', 'id', coalesce(new.id, old.id))::text);
      return null;
    end $$`)
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw(`
    create or replace function silo_notify_tenant() returns trigger language plpgsql as $$
    begin
      perform pg_notify('silo_catalog', json_build_object('kind', 'tenant', 'id', coalesce(new.id, old.id))::text);
      return null;
    end $$`)
  await knex.raw('drop trigger tenants_credential_key on tenants')
  await knex.raw('drop function silo_check_credential_key()')
  await knex.raw('drop trigger catalog_identity_notify_key on catalog_identity')
  await knex.raw('drop function silo_notify_key()')
  await knex.schema.alterTable('catalog_identity', (table) => {
    table.dropColumn('key_id')
  })
}
