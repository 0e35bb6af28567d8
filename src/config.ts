import { Ajv, type ValidateFunction } from 'ajv'
import dotenv from 'dotenv'
import { Type, type Static } from '@sinclair/typebox'
import { SiloError } from './errors.js'

/** Environment schema: the one place where Silo's settings, their types and defaults live. */
const EnvSchema = Type.Object({
  DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  CATALOG_DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  CATALOG_DATABASE: Type.String({ pattern: '^[a-z_][a-z0-9_]{0,62}$', default: 'silo_catalog' }),
  DATA_DIR: Type.String({ minLength: 1, default: '.data' }),
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  ADMIN_HOST: Type.String({ minLength: 1, default: 'admin.localhost' }),
  ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  SECRET_KEY: Type.Optional(Type.String({ minLength: 16 })),
  SECRET_KEY_PREVIOUS: Type.Optional(Type.String({ minLength: 16 })),
  TENANT_POOL_MAX: Type.Integer({ minimum: 1, maximum: 1000, default: 5 }),
  TENANT_POOLS_MAX: Type.Integer({ minimum: 1, maximum: 100000, default: 100 }),
  CONNECTION_BUDGET: Type.Optional(Type.Integer({ minimum: 1 })),
  CONNECTION_QUEUE_MAX: Type.Integer({ minimum: 0, default: 1000 }),
  TENANT_CONNECT_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 1000, default: 4 }),
  TENANT_IDLE_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 30000 }),
  TENANT_ACQUIRE_TIMEOUT_MS: Type.Integer({ minimum: 10, default: 5000 }),
  HOST_CACHE_TTL_MS: Type.Integer({ minimum: 0, default: 5000 }),
  HOST_CACHE_MAX: Type.Integer({ minimum: 1, default: 10000 }),
  TENANT_DB_PREFIX: Type.String({ pattern: '^[a-z][a-z0-9_]{0,19}$', default: 'silo_' }),
  TENANT_TEMPLATE: Type.Union([Type.Literal('on'), Type.Literal('off')], { default: 'on' }),
  TENANT_SPARES: Type.Integer({ minimum: 0, maximum: 100, default: 2 }),
  TENANT_SPARES_MAX: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  SCHEMA_GUARD: Type.Union([Type.Literal('strict'), Type.Literal('off')], { default: 'strict' }),
  MIGRATE_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
  MOVE_HOLD_MS: Type.Integer({ minimum: 50, maximum: 60000, default: 3000 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info' }
  )
})
type Env = Static<typeof EnvSchema>

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
  'tenantPoolMax' | 'tenantPoolsMax' | 'connectionBudget' | 'connectionQueueMax' | 'tenantConnectConcurrency' | 'tenantIdleTimeoutMs' | 'tenantAcquireTimeoutMs' |
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
 * The environment's validator, compiled once per process on first use: Ajv applies the defaults,
 * coerces text to the schema's types, drops variables the schema does not name, and reports
 * every error at once (env-schema's settings, without its module's start-up cost: it compiled
 * JSON Schema's meta-schema as it loaded, 50-70 ms in every process and CLI command, where
 * checking Silo's own schema needs none of it).
 */
let envValidator: { ajv: Ajv, validate: ValidateFunction<Env> } | undefined
function compileEnvValidator (): { ajv: Ajv, validate: ValidateFunction<Env> } {
  const ajv = new Ajv({ allErrors: true, removeAdditional: true, useDefaults: true, coerceTypes: true, allowUnionTypes: true, validateSchema: false })
  return { ajv, validate: ajv.compile<Env>({ ...EnvSchema, additionalProperties: false }) }
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
  const { ajv, validate } = envValidator ??= compileEnvValidator()
  if (!validate(env)) throw new SiloError('CONFIG_INVALID', `Invalid configuration: ${ajv.errorsText(validate.errors, { dataVar: 'env' })}`)
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
