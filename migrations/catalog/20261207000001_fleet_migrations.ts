import type { Knex } from 'knex'

/**
 * Fleet migrations as a resource (`tenants migrate --all`, `POST /migrations`): one row per run
 * over every tenant, whose id is the `run_id` of that run's rows in migration_runs (one per
 * tenant, written as each finishes). The row says what the run set out to do (direction, tenants,
 * concurrency, who started it) and, once it ends, its summary; progress while it runs is counted
 * from its migration_runs rows. A run whose row never ended and whose lock is free was stopped
 * (its process killed): `finished_at` stays null until the next run closes it as interrupted.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('fleet_migrations', (table) => {
    table.uuid('id').primary()
    table.text('direction').notNullable()
    table.text('origin').notNullable()
    table.integer('tenants').notNullable()
    table.integer('concurrency').notNullable()
    table.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.timestamp('finished_at', { useTz: true })
    table.integer('migrated')
    table.integer('up_to_date')
    table.integer('skipped')
    table.integer('failed')
    table.integer('duration_ms')
    // Why the run ended before every tenant was attempted (stopped, interrupted); null otherwise.
    table.text('error')
    table.index(['started_at'])
  })
  await knex.raw('alter table fleet_migrations add constraint fleet_migrations_direction_check check (direction in (\'latest\', \'rollback\'))')
  await knex.raw('alter table fleet_migrations add constraint fleet_migrations_origin_check check (origin in (\'cli\', \'api\'))')
  await knex.raw('create index fleet_migrations_unfinished on fleet_migrations (started_at) where finished_at is null')
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('fleet_migrations')
}
