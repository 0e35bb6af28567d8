// The environment contract (README, Configuration): defaults, types, what is refused, and how.
// A pure module: no database, no process.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import t from './helpers/tap.js'
import { root } from './helpers/paths.js'
import { loadConfig } from '../src/config.js'
import { ENV_VALIDATOR_OPTIONS, ENV_VALIDATOR_SCHEMA } from '../src/env-schema.js'
import { validateEnv } from '../src/env-validator.js'

const load = (values: Record<string, string | number | undefined>) => loadConfig(values, { env: false, dotenv: false })

const refusal = (values: Record<string, string | number | undefined>): string => {
  try {
    load(values)
  } catch (error) {
    if ((error as { code?: string }).code !== 'CONFIG_INVALID') throw error
    return (error as Error).message
  }
  throw new Error(`accepted ${JSON.stringify(values)}`)
}

t.test('an empty environment takes every default', async (t) => {
  t.match(load({}), {
    databaseUrl: undefined,
    managedServer: true,
    catalogDatabase: 'silo_catalog',
    dataDir: '.data',
    host: '127.0.0.1',
    port: 3000,
    adminHost: 'admin.localhost',
    adminToken: undefined,
    tenantPoolMax: 5,
    tenantPoolsMax: 100,
    connectionBudget: 500,
    connectionQueueMax: 1000,
    tenantIdleTimeoutMs: 30000,
    tenantAcquireTimeoutMs: 5000,
    tenantRequestsMax: 40,
    hostCacheTtlMs: 5000,
    hostCacheMax: 10000,
    tenantDbPrefix: 'silo_',
    tenantTemplate: true,
    tenantSpares: 2,
    tenantSparesMax: 16,
    schemaGuard: true,
    migrateConcurrency: 4,
    logLevel: 'info'
  })
})

t.test('values arrive as text and are read as their types; an empty value is unset; unknown names are ignored', async (t) => {
  const config = load({
    DATABASE_URL: 'postgres://silo@db.example:5433/postgres',
    PORT: '8080',
    TENANT_POOL_MAX: '3',
    TENANT_POOLS_MAX: '7',
    ADMIN_HOST: 'Admin.Example.COM',
    ADMIN_TOKEN: '',
    TENANT_TEMPLATE: 'off',
    SCHEMA_GUARD: 'off',
    SOMETHING_ELSE: 'x'
  })
  t.match(config, { managedServer: false, port: 8080, tenantPoolMax: 3, tenantPoolsMax: 7, connectionBudget: 21, adminHost: 'admin.example.com', tenantTemplate: false, schemaGuard: false })
  t.equal(config.adminToken, undefined, 'ADMIN_TOKEN= counts as unset')
  t.notOk('SOMETHING_ELSE' in config)
  t.equal(load({ CONNECTION_BUDGET: '50' }).connectionBudget, 50, 'CONNECTION_BUDGET wins over the product of the pool settings')
})

t.test('overrides win over the environment, which is read unless told not to', async (t) => {
  const saved = process.env.TENANT_SPARES
  process.env.TENANT_SPARES = '9'
  t.teardown(() => {
    if (saved === undefined) delete process.env.TENANT_SPARES
    else process.env.TENANT_SPARES = saved
  })
  t.equal(loadConfig({}, { dotenv: false }).tenantSpares, 9, 'read from process.env')
  t.equal(loadConfig({ TENANT_SPARES: 1 }, { dotenv: false }).tenantSpares, 1, 'an override wins')
  t.equal(load({}).tenantSpares, 2, 'env: false reads none of it')
})

t.test('TENANT_REQUESTS_MAX: eight a connection of TENANT_POOL_MAX by default, 0 for no limit, or as set', async (t) => {
  t.equal(load({ TENANT_POOL_MAX: '3' }).tenantRequestsMax, 24)
  t.equal(load({ TENANT_POOL_MAX: '3', TENANT_REQUESTS_MAX: '7' }).tenantRequestsMax, 7)
  t.equal(load({ TENANT_REQUESTS_MAX: '0' }).tenantRequestsMax, 0)
})

t.test('TENANT_SPARES_MAX: 16 by default, TENANT_SPARES when that is more, or as set', async (t) => {
  t.equal(load({}).tenantSparesMax, 16)
  t.equal(load({ TENANT_SPARES: '40' }).tenantSparesMax, 40, 'never below TENANT_SPARES')
  t.equal(load({ TENANT_SPARES_MAX: '2' }).tenantSparesMax, 2, 'equal to TENANT_SPARES: a fixed stock')
  t.equal(load({ TENANT_SPARES: '0', TENANT_SPARES_MAX: '0' }).tenantSparesMax, 0)
})

t.test('a value of the wrong type or outside its range is refused with CONFIG_INVALID, naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'abc' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ TENANT_POOL_MAX: '3.5' }, /TENANT_POOL_MAX/],
    [{ TENANT_POOL_MAX: '0' }, /TENANT_POOL_MAX/],
    [{ CONNECTION_BUDGET: '-1' }, /CONNECTION_BUDGET/],
    [{ TENANT_REQUESTS_MAX: '-1' }, /TENANT_REQUESTS_MAX/],
    [{ TENANT_REQUESTS_MAX: '2.5' }, /TENANT_REQUESTS_MAX/],
    [{ TENANT_TEMPLATE: 'maybe' }, /TENANT_TEMPLATE/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ CATALOG_DATABASE: 'Bad-Name' }, /CATALOG_DATABASE/],
    [{ TENANT_DB_PREFIX: '1x_' }, /TENANT_DB_PREFIX/],
    [{ TENANT_SPARES: '101' }, /TENANT_SPARES/],
    [{ TENANT_SPARES_MAX: '-1' }, /TENANT_SPARES_MAX/],
    [{ TENANT_SPARES: '4', TENANT_SPARES_MAX: '3' }, /TENANT_SPARES_MAX \(3\) is below TENANT_SPARES \(4\)/]
  ]
  for (const [values, named] of cases) t.match(refusal(values), named, JSON.stringify(values))
  const both = refusal({ PORT: 'abc', MIGRATE_CONCURRENCY: '0' })
  t.match(both, /PORT/, 'every problem is reported at once')
  t.match(both, /MIGRATE_CONCURRENCY/)
})

t.test('a refused secret is named, never echoed', async (t) => {
  const shortToken = 'tooshort-token'
  const shortKey = 'short-key'
  const message = refusal({ ADMIN_TOKEN: shortToken, SECRET_KEY: shortKey, SECRET_KEY_PREVIOUS: 'prev-short' })
  t.match(message, /ADMIN_TOKEN/)
  t.match(message, /SECRET_KEY/)
  for (const secret of [shortToken, shortKey, 'prev-short']) t.notOk(message.includes(secret), 'the value is not in the message')
})

t.test('the build\'s precompiled validator answers as Ajv\'s compile of the schema does', async (t) => {
  // npm test runs the compiled tree, where the build put Ajv's standalone code in env-validator's place.
  t.match(readFileSync(join(root, 'dist/src/env-validator.js'), 'utf8'), /^\/\/ Generated at build by scripts\/env-validator\.mjs/, 'dist/ holds the precompiled validator')
  const compiled = new Ajv(ENV_VALIDATOR_OPTIONS).compile(ENV_VALIDATOR_SCHEMA)
  const key = 'k'.repeat(16)
  const cases: Array<Record<string, string>> = [
    {},
    { PORT: '8080', TENANT_POOL_MAX: '7', LOG_LEVEL: 'warn', TENANT_TEMPLATE: 'off', SECRET_KEY: key, UNRELATED: 'dropped' },
    { PORT: '70000' },
    { PORT: 'abc', TENANT_SPARES: '-1', LOG_LEVEL: 'loud' },
    { CATALOG_DATABASE: 'Bad-Name', TENANT_DB_PREFIX: '9x' },
    // 8 characters outside the BMP are 16 UTF-16 units: JSON Schema counts characters, so this is too short.
    { SECRET_KEY: '\u{1F511}'.repeat(8) },
    { SECRET_KEY: '\u{1F511}'.repeat(16), ADMIN_TOKEN: 'short' }
  ]
  for (const input of cases) {
    const [mine, theirs] = [{ ...input }, { ...input }]
    const verdict = validateEnv(mine)
    t.equal(verdict, compiled(theirs), `the same verdict for ${JSON.stringify(input)}`)
    t.same(mine, theirs, 'the same defaults, types and dropped names')
    const errors = (list: typeof compiled.errors) => (list ?? []).map(({ instancePath, keyword, message }) => ({ instancePath, keyword, message }))
    t.same(errors(validateEnv.errors), errors(compiled.errors), 'the same errors')
  }
  t.match(refusal({ SECRET_KEY: '\u{1F511}'.repeat(8) }), /env\/SECRET_KEY must NOT have fewer than 16 characters/, 'the refusal is worded by Ajv')
})
