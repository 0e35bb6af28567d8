import type { Knex } from 'knex'

/**
 * Moving a tenant between servers (`tenants move`).
 *
 * - `tenants.frozen_until`: while set and in the future, the tenant's writes are frozen for the
 *   final part of a move: instances hold its requests (MOVE_HOLD_MS) instead of serving them. It
 *   is a deadline, not a flag, so a mover that dies mid-freeze cannot freeze the tenant for
 *   longer than that: past it, the tenant serves from its source again. The mover's switch only
 *   commits while the deadline has not passed. An update of `tenants` is announced on the feed
 *   (silo_catalog), so every instance learns a freeze and a switch at once.
 * - `tenant_moves`: one row per move, with its phase and figures, for progress (`GET /moves/:id`)
 *   and for `doctor`, which finds a move that stopped without finishing (its row not finished,
 *   its tenant's lock free) and cleans up after it.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('tenants', (table) => {
    table.timestamp('frozen_until', { useTz: true })
  })
  await knex.schema.createTable('tenant_moves', (table) => {
    table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'))
    // No foreign key: the record of a move outlives a tenant dropped afterwards.
    table.uuid('tenant_id').notNullable()
    table.text('slug').notNullable()
    table.text('from_server').notNullable()
    table.text('to_server').notNullable()
    table.text('phase').notNullable()
    table.boolean('keep_source').notNullable().defaultTo(false)
    table.bigInteger('rows_copied').notNullable().defaultTo(0)
    table.bigInteger('changes_applied').notNullable().defaultTo(0)
    table.integer('freeze_ms')
    table.text('error')
    table.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.timestamp('finished_at', { useTz: true })
    table.index(['slug', 'started_at'])
  })
  await knex.raw('create index tenant_moves_unfinished on tenant_moves (slug) where finished_at is null')
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('tenant_moves')
  await knex.schema.alterTable('tenants', (table) => {
    table.dropColumn('frozen_until')
  })
}
