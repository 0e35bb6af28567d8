import type { Knex } from 'knex'

export async function up (knex: Knex): Promise<void> {
  // The identity key is assigned in insertion order, so "newest first" is `order by id desc`
  // and a page cursor is the last id seen: the primary key index serves every page.
  await knex.raw(`
    create table articles (
      id bigint generated always as identity primary key,
      title text not null check (char_length(title) between 1 and 200),
      body text not null check (char_length(body) <= 100000),
      published boolean not null default false,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`)
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('articles')
}
