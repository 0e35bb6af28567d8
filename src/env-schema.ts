import { Type, type Static } from '@sinclair/typebox'

/** Environment schema: the one place where Silo's settings, their types and defaults live. */
export const EnvSchema = Type.Object({
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
  TENANT_REQUESTS_MAX: Type.Optional(Type.Integer({ minimum: 0 })),
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
export type Env = Static<typeof EnvSchema>

/**
 * How the environment is checked (env-schema's settings): Ajv applies the defaults, coerces text
 * to the schema's types, drops variables the schema does not name, and reports every error at
 * once. Unknown variables are dropped, not refused: the environment holds far more than Silo's.
 */
export const ENV_VALIDATOR_OPTIONS = { allErrors: true, removeAdditional: true, useDefaults: true, coerceTypes: true, allowUnionTypes: true, validateSchema: false } as const

/** The schema Ajv compiles: the environment's, closed, so that `removeAdditional` drops what it does not name. */
export const ENV_VALIDATOR_SCHEMA = { ...EnvSchema, additionalProperties: false }
