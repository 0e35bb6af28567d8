import type { Knex } from 'knex'

export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('tenants', (table) => {
    table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'))
    table.text('slug').notNullable().unique()
    table.text('name').notNullable()
    table.text('status').notNullable().defaultTo('provisioning')
    // Where the tenant's database lives; null host/port mean the server of DATABASE_URL.
    table.text('db_host')
    table.integer('db_port')
    table.text('db_name').notNullable().unique()
    table.text('db_user').notNullable().unique()
    // AES-256-GCM ciphertext (see src/catalog/credential-cipher.ts), never the password itself.
    table.text('db_password').notNullable()
    table.text('schema_version')
    table.timestamps(true, true)
  })
  await knex.raw(`alter table tenants add constraint tenants_status_check
    check (status in ('provisioning', 'active', 'suspended', 'failed', 'dropping'))`)
  await knex.raw('alter table tenants add constraint tenants_slug_check check (slug ~ \'^[a-z][a-z0-9-]{1,39}$\')')

  await knex.schema.createTable('domains', (table) => {
    table.text('host').primary()
    table.uuid('tenant_id').notNullable().references('id').inTable('tenants').onDelete('CASCADE')
    table.boolean('is_primary').notNullable().defaultTo(false)
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.index(['tenant_id'])
  })
  await knex.raw('alter table domains add constraint domains_host_lowercase check (host = lower(host))')
  await knex.raw('create unique index domains_one_primary on domains (tenant_id) where is_primary')
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('domains')
  await knex.schema.dropTable('tenants')
}
