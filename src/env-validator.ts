import { Ajv, type ValidateFunction } from 'ajv'
import { ENV_VALIDATOR_OPTIONS, ENV_VALIDATOR_SCHEMA, type Env } from './env-schema.js'

/**
 * The environment's validator (env-schema.ts: the schema and Ajv's settings).
 *
 * Run from the TypeScript sources (`npm run dev`, tsx) it is compiled here, as this module loads.
 * Every build (scripts/build.mjs, through scripts/env-validator.mjs) replaces this module's compiled
 * copy in dist/ with Ajv's standalone code for the same schema and settings, so the
 * server, every CLI command and every test process load the validator instead of compiling it:
 * Ajv's compile took some 40 ms of CPU in each process. (env-schema's own module compiled JSON
 * Schema's meta-schema as it loaded, 50-70 ms more: Silo never used it.)
 */
function compileEnvValidator (): ValidateFunction<Env> {
  return new Ajv(ENV_VALIDATOR_OPTIONS).compile<Env>(ENV_VALIDATOR_SCHEMA)
}

export const validateEnv: ValidateFunction<Env> = compileEnvValidator()
