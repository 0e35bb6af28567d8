import type { Knex } from 'knex'
import { parse as parseConnectionString } from 'pg-connection-string'
import { DirectoryMigrationSource } from './migration-source.js'
import { fileURLToPath } from 'node:url'
import { catalogMigrationsDir, tenantMigrationsDir, tenantSeedsDir, moduleExtension } from './paths.js'

export interface PgConnection {
  host: string
  port: number
  user: string
  password?: string
  database: string
  ssl?: boolean | { rejectUnauthorized?: boolean }
  application_name?: string
  connectionTimeoutMillis?: number
}

export const catalogMigrations = new DirectoryMigrationSource(catalogMigrationsDir)
export const tenantMigrations = new DirectoryMigrationSource(tenantMigrationsDir)

/** Connection settings of the admin URL, optionally pointed at another database. */
export function connectionFromUrl (url: string, database?: string): PgConnection {
  const parsed = parseConnectionString(url)
  const connection: PgConnection = {
    host: parsed.host ?? '127.0.0.1',
    port: parsed.port === undefined || parsed.port === null ? 5432 : Number(parsed.port),
    user: parsed.user ?? 'postgres',
    database: database ?? parsed.database ?? 'postgres',
    application_name: 'silo'
  }
  if (parsed.password !== undefined && parsed.password !== '') connection.password = parsed.password
  if (parsed.ssl !== undefined && parsed.ssl !== false) {
    connection.ssl = typeof parsed.ssl === 'object' ? { rejectUnauthorized: parsed.ssl.rejectUnauthorized } : true
  }
  return connection
}

export interface KnexConfigOptions {
  connection: PgConnection
  /** Which schema this database carries: decides the migrations (and seeds) knex sees. */
  schema?: 'catalog' | 'tenant'
  pool?: Knex.PoolConfig
  /** PostgreSQL's version; when given knex skips its `select version()` probe on every new connection. */
  serverVersion?: string
  /** A knex client class, e.g. one that counts connections against a budget. */
  client?: Knex.Config['client']
  /** Mute knex's console warnings and errors (the caller reports failures itself). */
  quiet?: boolean
  /** Tenant migrations from another directory (benchmarks, tests of a new migration). */
  migrationSource?: DirectoryMigrationSource
}

const silent = (): void => {}

/** The one knex-config factory: knexfile.ts, the catalog, the pool cache and the CLI all use it. */
export function knexConfig (options: KnexConfigOptions): Knex.Config {
  const config: Knex.Config = {
    client: options.client ?? 'pg',
    connection: options.connection,
    pool: { min: 0, max: 5, idleTimeoutMillis: 30000, ...options.pool },
    acquireConnectionTimeout: options.pool?.acquireTimeoutMillis ?? 10000
  }
  if (options.serverVersion !== undefined) config.version = options.serverVersion
  if (options.quiet === true) config.log = { warn: silent, error: silent, debug: silent, deprecate: silent }
  if (options.schema === 'catalog') {
    config.migrations = { migrationSource: catalogMigrations }
  } else if (options.schema === 'tenant') {
    config.migrations = { migrationSource: options.migrationSource ?? tenantMigrations }
    config.seeds = { directory: fileURLToPath(tenantSeedsDir), loadExtensions: [moduleExtension] }
  }
  return config
}
