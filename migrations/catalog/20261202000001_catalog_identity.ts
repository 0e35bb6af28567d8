import type { Knex } from 'knex'

/**
 * The catalog's identity: an id generated once, which Silo writes (as a comment) on every
 * database and role it creates for this catalog. `doctor` calls an object an orphan only when it
 * carries this id and the catalog does not know it, so a catalog whose name starts with the
 * tenant prefix, or another catalog's tenants on the same server, are never taken for orphans.
 * One row, always (`singleton`).
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('catalog_identity', (table) => {
    table.boolean('singleton').primary().defaultTo(true)
    table.uuid('id').notNullable().defaultTo(knex.raw('gen_random_uuid()'))
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    // When the databases and roles of tenants made before marks existed were marked (at open).
    table.timestamp('objects_marked_at', { useTz: true })
  })
  await knex.raw('alter table catalog_identity add constraint catalog_identity_singleton check (singleton)')
  await knex('catalog_identity').insert({})
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('catalog_identity')
}
