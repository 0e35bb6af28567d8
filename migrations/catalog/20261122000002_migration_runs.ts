import type { Knex } from 'knex'

/** One row per tenant per migrate/rollback attempt: who is on which version, and what failed. */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('migration_runs', (table) => {
    table.bigIncrements('id')
    // Groups the tenants of one fleet run.
    table.uuid('run_id').notNullable()
    table.uuid('tenant_id').references('id').inTable('tenants').onDelete('SET NULL')
    table.text('slug').notNullable()
    table.text('direction').notNullable()
    table.text('status').notNullable()
    table.text('version_before')
    table.text('version_after')
    table.specificType('applied', 'text[]').notNullable().defaultTo('{}')
    table.integer('duration_ms').notNullable()
    table.text('error')
    table.timestamp('finished_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.index(['slug', 'finished_at'])
    table.index(['run_id'])
  })
  await knex.raw(`alter table migration_runs add constraint migration_runs_status_check
    check (status in ('migrated', 'up-to-date', 'failed', 'skipped'))`)
  await knex.raw('alter table migration_runs add constraint migration_runs_direction_check check (direction in (\'latest\', \'rollback\'))')
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('migration_runs')
}
