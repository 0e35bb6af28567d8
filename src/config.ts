import { createRequire } from 'node:module'
import dotenv from 'dotenv'
import type { ErrorObject } from 'ajv'
import { ENV_VALIDATOR_OPTIONS, type Env } from './env-schema.js'
import { validateEnv } from './env-validator.js'
import { SiloError } from './errors.js'

export interface Config {
  /** Admin URL of the PostgreSQL server; unset means an embedded server is started. */
  databaseUrl: string | undefined
  /**
   * DATABASE_URL was not given: Silo runs (or joins) an embedded server of its own, which it
   * manages whole (it closes PostgreSQL's own databases to tenant roles at start).
   */
  managedServer: boolean
  /** Admin URL of the server holding the catalog database; unset means the DATABASE_URL server. */
  catalogDatabaseUrl: string | undefined
  catalogDatabase: string
  dataDir: string
  host: string
  port: number
  adminHost: string
  adminToken: string | undefined
  secretKey: string | undefined
  /** The key SECRET_KEY replaces, during a rotation: decrypts only (see `tenants rekey`). */
  secretKeyPrevious: string | undefined
  tenantPoolMax: number
  tenantPoolsMax: number
  connectionBudget: number
  connectionQueueMax: number
  /** Tenant connections being opened at once on one server; more wait their turn, holding no budget slot. */
  tenantConnectConcurrency: number
  tenantIdleTimeoutMs: number
  tenantAcquireTimeoutMs: number
  /** Requests one tenant's pool serves at once in this instance; more wait their turn (0: no limit). */
  tenantRequestsMax: number
  hostCacheTtlMs: number
  hostCacheMax: number
  tenantDbPrefix: string
  /** Clone new tenant databases from a migrated template database. */
  tenantTemplate: boolean
  /** Tenant databases a server keeps cloned ahead of demand (0: none; needs the template). */
  tenantSpares: number
  /** The most spares a server keeps while creates outrun TENANT_SPARES (never fewer than it). */
  tenantSparesMax: number
  /** Refuse (503) tenants whose schema is behind the code's newest migration. */
  schemaGuard: boolean
  migrateConcurrency: number
  /** The longest a move freezes a tenant's writes; its requests wait that long at most, then 503. */
  moveHoldMs: number
  logLevel: string
}

/**
 * What the tenancy core reads (openSilo): the servers, the catalog, the credentials' keys, the
 * pools and their budget, the host cache, tenant naming, template and spares. The admin host is
 * here too: no tenant may take it as a domain.
 */
export type CoreConfig = Pick<Config,
  'databaseUrl' | 'managedServer' | 'catalogDatabaseUrl' | 'catalogDatabase' | 'adminHost' | 'secretKey' | 'secretKeyPrevious' |
  'tenantPoolMax' | 'tenantPoolsMax' | 'connectionBudget' | 'connectionQueueMax' | 'tenantConnectConcurrency' | 'tenantIdleTimeoutMs' | 'tenantAcquireTimeoutMs' | 'tenantRequestsMax' |
  'hostCacheTtlMs' | 'hostCacheMax' | 'tenantDbPrefix' | 'tenantTemplate' | 'tenantSpares' | 'tenantSparesMax' | 'moveHoldMs'>

/** What the HTTP application reads (buildApp): the admin host and token, the port the docs name, logging, the schema guard, a fleet migration's concurrency. */
export type HttpConfig = Pick<Config, 'adminHost' | 'adminToken' | 'port' | 'logLevel' | 'schemaGuard' | 'migrateConcurrency'>

/** What the tenants command line reads beyond the core's. */
export type CliConfig = Pick<Config, 'migrateConcurrency'>

export interface LoadConfigOptions {
  /** Read `process.env` (default true). Tests turn it off to be independent of the caller's shell. */
  env?: boolean
  /** Read a `.env` file from the working directory (default true). */
  dotenv?: boolean
}

/** An empty variable counts as unset (`ADMIN_TOKEN=` in a compose file or a .env). */
const withoutEmpty = (values: Record<string, string | number | undefined>): Record<string, string | number> =>
  Object.fromEntries(Object.entries(values).filter((entry): entry is [string, string | number] => entry[1] !== undefined && entry[1] !== ''))

/**
 * The validator's errors in Ajv's words. Ajv itself is loaded only here, on a configuration that
 * fails: the validator is compiled ahead (env-validator.ts), and a process that starts with a
 * valid environment (a CLI command) does not load Ajv's compiler at all.
 */
function errorsText (errors: ErrorObject[] | null | undefined): string {
  const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv')
  return new Ajv(ENV_VALIDATOR_OPTIONS).errorsText(errors, { dataVar: 'env' })
}

/** Spares kept under a burst of creates: TENANT_SPARES_MAX, by default 16 (or TENANT_SPARES when that is more); never fewer than TENANT_SPARES. */
function sparesMax (env: Env): number {
  const max = env.TENANT_SPARES_MAX ?? Math.max(DEFAULT_SPARES_MAX, env.TENANT_SPARES)
  if (max < env.TENANT_SPARES) throw new SiloError('CONFIG_INVALID', `Invalid configuration: TENANT_SPARES_MAX (${max}) is below TENANT_SPARES (${env.TENANT_SPARES})`)
  return max
}
const DEFAULT_SPARES_MAX = 16

/** Reads and validates the configuration; `overrides` win over the environment. */
export function loadConfig (overrides: Record<string, string | number | undefined> = {}, options: LoadConfigOptions = {}): Config {
  if (options.dotenv ?? true) dotenv.config({ quiet: true })
  const env: Record<string, unknown> = { ...((options.env ?? true) ? withoutEmpty(process.env) : {}), ...withoutEmpty(overrides) }
  if (!validateEnv(env)) throw new SiloError('CONFIG_INVALID', `Invalid configuration: ${errorsText(validateEnv.errors)}`)
  return {
    databaseUrl: env.DATABASE_URL,
    managedServer: env.DATABASE_URL === undefined,
    catalogDatabaseUrl: env.CATALOG_DATABASE_URL,
    catalogDatabase: env.CATALOG_DATABASE,
    dataDir: env.DATA_DIR,
    host: env.HOST,
    port: env.PORT,
    adminHost: env.ADMIN_HOST.toLowerCase(),
    adminToken: env.ADMIN_TOKEN,
    secretKey: env.SECRET_KEY,
    secretKeyPrevious: env.SECRET_KEY_PREVIOUS,
    tenantPoolMax: env.TENANT_POOL_MAX,
    tenantPoolsMax: env.TENANT_POOLS_MAX,
    connectionBudget: env.CONNECTION_BUDGET ?? env.TENANT_POOL_MAX * env.TENANT_POOLS_MAX,
    connectionQueueMax: env.CONNECTION_QUEUE_MAX,
    tenantConnectConcurrency: env.TENANT_CONNECT_CONCURRENCY,
    tenantIdleTimeoutMs: env.TENANT_IDLE_TIMEOUT_MS,
    tenantAcquireTimeoutMs: env.TENANT_ACQUIRE_TIMEOUT_MS,
    // Eight a connection: as deep as a pool's own queue must get before it grows (DEEP_QUEUE, makeElastic).
    tenantRequestsMax: env.TENANT_REQUESTS_MAX ?? 8 * env.TENANT_POOL_MAX,
    hostCacheTtlMs: env.HOST_CACHE_TTL_MS,
    hostCacheMax: env.HOST_CACHE_MAX,
    tenantDbPrefix: env.TENANT_DB_PREFIX,
    tenantTemplate: env.TENANT_TEMPLATE === 'on',
    tenantSpares: env.TENANT_SPARES,
    tenantSparesMax: sparesMax(env),
    schemaGuard: env.SCHEMA_GUARD === 'strict',
    migrateConcurrency: env.MIGRATE_CONCURRENCY,
    moveHoldMs: env.MOVE_HOLD_MS,
    logLevel: env.LOG_LEVEL
  }
}
