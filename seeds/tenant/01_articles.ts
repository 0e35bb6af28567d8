import type { Knex } from 'knex'

/**
 * A handful of demo articles, inserted oldest first so the welcome article, which names the
 * database it lives in (isolation made visible), comes first in the newest-first list.
 */
export async function seed (knex: Knex): Promise<void> {
  const { rows } = await knex.raw<{ rows: Array<{ db: string }> }>('select current_database() as db')
  const database = rows[0]?.db ?? 'this tenant'
  await knex('articles').del()
  await knex('articles').insert([
    { title: 'A draft', body: 'Drafts are articles with published set to false.', published: false },
    { title: 'Pools on a budget', body: 'Per-tenant pools live in an LRU cache bounded in pools and in connections.', published: true },
    { title: 'Routing by Host', body: 'The Host header of each request decides which tenant, and so which database, it touches.', published: true },
    { title: 'One database per tenant', body: 'Every tenant gets its own PostgreSQL database, role and connection pool.', published: true },
    { title: 'Welcome to Silo', body: `This article lives in the database ${database}, and nowhere else.`, published: true }
  ])
}
