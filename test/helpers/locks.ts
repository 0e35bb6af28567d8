import type { FastifyInstance } from 'fastify'
import type { Knex } from 'knex'
import pg from 'pg'
import { connectionFromUrl } from '../../src/db/knex-config.js'
import { countWaitingBackends } from '../../src/testing/backends.js'
import { databaseUrl, type Teardown } from './silo.js'

/**
 * A session of the test on a tenant's database (as the admin role) that holds an exclusive lock
 * on its articles table until `release`: every query of a route on that table waits in
 * PostgreSQL, holding its pooled connection, until the test lets go.
 */
export async function lockArticles (t: Teardown, observer: Knex, database: string): Promise<{ waiting: () => Promise<number>, release: () => Promise<void>, client: pg.Client }> {
  const client = new pg.Client({ ...connectionFromUrl(databaseUrl(), database), application_name: 'test-articles-locker' })
  await client.connect()
  t.teardown(async () => { await client.end().catch(() => {}) })
  await client.query('begin')
  await client.query('lock table articles in access exclusive mode')
  return {
    client,
    // Asked on a connection of its own: inside the locking transaction pg_stat_activity would
    // keep showing the snapshot it took first.
    waiting: async () => await countWaitingBackends(observer, { database, waitEventType: 'Lock', applicationName: 'silo:%' }),
    release: async () => { await client.query('commit') }
  }
}

/** Open HTTP connections of the listening app, as its server counts them. */
export const openConnections = async (app: FastifyInstance): Promise<number> =>
  await new Promise((resolve, reject) => { app.server.getConnections((error, count) => { if (error !== null) reject(error); else resolve(count) }) })
