import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import type { DoctorDeps } from '../../src/lifecycle/doctor.js'
import type { Silo } from '../../src/silo.js'

/** Runs SQL on a server as its superuser (`url`), in `database`. */
export async function sql<T extends pg.QueryResultRow> (url: string, database: string, text: string, values: unknown[] = []): Promise<T[]> {
  const target = new URL(url)
  target.pathname = `/${database}`
  const client = new pg.Client({ connectionString: target.toString() })
  await client.connect()
  try {
    return (await client.query<T>(text, values)).rows
  } finally {
    await client.end()
  }
}

/** What the move tests ask of a Silo on DATABASE_URL's server (`default`) while moving its tenants. */
export function moveProbes (silo: Silo, app: FastifyInstance) {
  const defaultUrl = silo.config.databaseUrl ?? ''
  return {
    defaultUrl,
    doctorDeps: { catalog: silo.catalog, servers: silo.servers, provisioner: silo.provisioner, prefix: silo.config.tenantDbPrefix } satisfies DoctorDeps,
    /** Whether the server of `url` has a database and a role of that name. */
    exists: async (url: string, name: string): Promise<{ database: boolean, role: boolean }> => ({
      database: (await sql(url, 'postgres', 'select 1 from pg_database where datname = $1', [name])).length === 1,
      role: (await sql(url, 'postgres', 'select 1 from pg_roles where rolname = $1', [name])).length === 1
    }),
    /** The move's triggers and notes table left in a database on `default` (0: none). */
    captureLeft: async (name: string): Promise<number> =>
      (await sql<{ n: number }>(defaultUrl, name, "select (select count(*) from pg_trigger where tgname like 'silo_move%')::int + (select count(*) from pg_class where relname = 'silo_move_changes')::int as n"))[0]?.n ?? -1,
    articleCount: async (slug: string): Promise<number> =>
      await silo.withTenant(slug, async (db) => Number((await db('articles').count<Array<{ n: string }>>('* as n'))[0]?.n)),
    serverOf: async (slug: string): Promise<string | undefined> => (await silo.catalog.tenantBySlug(slug))?.server.name,
    /** A tenant with 5 seed articles, on `default`. */
    createOnDefault: async (slug: string): Promise<void> => { await silo.provisioner.create({ slug, domains: [`${slug}.test`], seed: true, server: 'default' }) },
    /** The status of a GET of one article page on `host`. */
    served: async (host: string): Promise<number> => (await app.inject({ url: '/articles?limit=1', headers: { host } })).statusCode
  }
}
