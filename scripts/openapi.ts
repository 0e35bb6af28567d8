/**
 * Writes the OpenAPI document the running service serves at /docs/json to a file:
 * `tsx scripts/with-database.ts tsx scripts/openapi.ts <file>` (`npm run lint:openapi` lints it).
 *
 * The document comes from the real app (buildApp on an opened Silo core), not from a copy of its
 * routes, so what is linted is what is served. The core needs a catalog: one of its own on
 * DATABASE_URL's server (an embedded one under with-database.ts when unset), dropped afterwards.
 * The shipped defaults (ADMIN_HOST, PORT) name the servers, as a fresh `npm start` serves them.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { openSilo } from '../src/silo.js'
import { dropSiloDatabases } from '../src/testing/cleanup.js'

const [out] = process.argv.slice(2)
const databaseUrl = process.env.DATABASE_URL
if (out === undefined || databaseUrl === undefined || databaseUrl === '') {
  process.stderr.write('usage: DATABASE_URL=... tsx scripts/openapi.ts <file>  (or through scripts/with-database.ts)\n')
  process.exit(2)
}

const id = randomBytes(4).toString('hex')
const config = loadConfig({
  DATABASE_URL: databaseUrl,
  CATALOG_DATABASE: `silo_openapi_${id}`,
  TENANT_DB_PREFIX: `oa${id}_`,
  SECRET_KEY: randomBytes(24).toString('hex'),
  TENANT_SPARES: 0,
  LOG_LEVEL: 'silent'
}, { env: false, dotenv: false })

try {
  const silo = await openSilo(config, { listen: false, spares: false })
  try {
    const app = await buildApp(silo, { config })
    await app.ready()
    await mkdir(dirname(out), { recursive: true })
    await writeFile(out, `${JSON.stringify(app.swagger(), null, 2)}\n`)
    await app.close()
  } finally {
    await silo.close()
  }
} finally {
  await dropSiloDatabases(databaseUrl, config)
}
process.stderr.write(`wrote the OpenAPI document to ${out}\n`)
