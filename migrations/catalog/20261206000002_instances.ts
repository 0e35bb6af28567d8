import type { Knex } from 'knex'

/**
 * The Silo instances serving now, and the slots of each server's connection budget each one
 * holds (see src/catalog/instance-registry.ts). A server with a budget of its own (`servers add
 * --budget`) shares it out among the instances: the claims of live instances never add up to
 * more than the budget, so N instances never open more than it between them. An instance whose
 * heartbeat is older than the lease is dead: its claims no longer count, and anyone removes it.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('instances', (table) => {
    table.uuid('id').primary()
    table.text('hostname').notNullable()
    table.integer('pid').notNullable()
    table.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.timestamp('heartbeat_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
  })
  await knex.schema.createTable('budget_claims', (table) => {
    table.uuid('instance_id').notNullable().references('id').inTable('instances').onDelete('CASCADE')
    table.uuid('server_id').notNullable().references('id').inTable('servers').onDelete('CASCADE')
    table.integer('slots').notNullable()
    table.primary(['instance_id', 'server_id'])
  })
  await knex.raw('alter table budget_claims add constraint budget_claims_slots_check check (slots >= 0)')
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('budget_claims')
  await knex.schema.dropTable('instances')
}
