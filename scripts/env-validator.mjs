import { rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

/**
 * The environment's validator, compiled ahead for dist/ (scripts/build.mjs runs this after transpiling).
 *
 * src/env-validator.ts compiles the environment's validator with Ajv as it loads (40 ms of CPU in
 * every process); its transpiled copy is replaced here by Ajv's standalone code for the same
 * schema and settings (src/env-schema.ts, as just transpiled), with the same export. Made at
 * every build, so it cannot fall behind the schema; run from the sources (tsx), the module
 * compiles it as before.
 */
export async function precompileEnvValidator (dist) {
  const target = join(dist, 'src/env-validator.js')
  const require = createRequire(import.meta.url)
  const { Ajv } = require('ajv')
  const standaloneCode = require('ajv/dist/standalone').default
  // A fresh URL each build: a process that builds twice must not get the first build's schema.
  const schemaUrl = `${pathToFileURL(join(dist, 'src/env-schema.js')).href}?build=${Date.now()}`
  const { ENV_VALIDATOR_OPTIONS, ENV_VALIDATOR_SCHEMA } = await import(schemaUrl)
  const ajv = new Ajv({ ...ENV_VALIDATOR_OPTIONS, code: { source: true, esm: true } })
  let code = standaloneCode(ajv, ajv.compile(ENV_VALIDATOR_SCHEMA))
  // Ajv's ES module output still reaches its run-time helpers with require(): import them.
  const imports = []
  code = code.replace(/require\("(ajv\/dist\/runtime\/[\w-]+)"\)/g, (_, path) => {
    imports.push(`import runtime${imports.length} from '${path}.js'`)
    return `runtime${imports.length - 1}`
  })
  if (/\brequire\(/.test(code) || !code.includes('export const validate =')) throw new Error('Ajv\'s standalone code for the environment\'s validator is not what the build expects')
  writeFileSync(target, [
    '// Generated at build by scripts/env-validator.mjs from src/env-schema.ts: Ajv\'s standalone code, in place of src/env-validator.ts\'s compile.',
    ...imports,
    code,
    'export const validateEnv = validate',
    ''
  ].join('\n'))
  rmSync(`${target}.map`, { force: true })
}
