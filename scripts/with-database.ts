/**
 * Runs a command with DATABASE_URL set: the caller's when it is set, otherwise that of an
 * embedded PostgreSQL started in a fresh temporary directory and removed afterwards.
 * `npm test` and `npm run bench` go through it, so both work on a machine with no PostgreSQL.
 *
 * --throwaway (the test suite): the embedded server, when one is started, skips fsync, since its
 * data is deleted afterwards (benchmarks keep the durable settings they measure); and the test
 * files leave the dropping of what they made to this process, which drops it all once the
 * command is done (SILO_TEST_DROPS: a list the tests append their catalog and prefix to, see
 * dropTestDatabases in test/helpers/silo.ts), or, on its embedded server, deletes it whole.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pLimit from 'p-limit'
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded-postgres.js'
import { dropSiloDatabases } from '../src/testing/cleanup.js'

const throwaway = process.argv[2] === '--throwaway'
const [command, ...args] = process.argv.slice(throwaway ? 3 : 2)
if (command === undefined) {
  process.stderr.write('usage: tsx scripts/with-database.ts [--throwaway] <command> [args...]\n')
  process.exit(2)
}

let embedded: EmbeddedPostgres | undefined
let dataDir: string | undefined
const env = { ...process.env }
if (env.DATABASE_URL === undefined || env.DATABASE_URL === '') {
  dataDir = await mkdtemp(join(tmpdir(), 'silo-pg-'))
  process.stderr.write(`DATABASE_URL is not set: starting an embedded PostgreSQL in ${dataDir}\n`)
  embedded = await startEmbeddedPostgres({ dataDir, password: randomBytes(18).toString('base64url'), throwaway })
  env.DATABASE_URL = embedded.url
}
const runDir = throwaway ? await mkdtemp(join(tmpdir(), 'silo-run-')) : undefined
if (runDir !== undefined) env.SILO_TEST_DROPS = join(runDir, 'drops.jsonl')

const child = spawn(command, args, { stdio: 'inherit', env })
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => { child.kill(signal) })
let code = await new Promise<number>((resolve) => {
  child.on('exit', (exitCode, signal) => { resolve(exitCode ?? (signal === null ? 1 : 128)) })
  child.on('error', (error) => { process.stderr.write(`${error.message}\n`); resolve(127) })
})
if (runDir !== undefined) {
  // On the embedded server everything goes with its data directory below.
  if (embedded === undefined && !(await dropListed(env.DATABASE_URL, env.SILO_TEST_DROPS ?? ''))) code = code === 0 ? 1 : code
  await rm(runDir, { recursive: true, force: true })
}
await embedded?.stop()
if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
process.exit(code)

/** Drops every catalog and prefix the tests listed; false, after saying why, if one could not be dropped. */
async function dropListed (databaseUrl: string, list: string): Promise<boolean> {
  const text = await readFile(list, 'utf8').catch(() => '')
  const entries = [...new Set(text.split('\n').filter((line) => line !== ''))]
    .map((line) => JSON.parse(line) as { catalogDatabase: string, tenantDbPrefix: string })
  const started = performance.now()
  let ok = true
  // Catalogs that share a tenant prefix (a test of two deployments on one server) are dropped one
  // after the other: each drops every database and role of the prefix.
  const byPrefix = new Map<string, typeof entries>()
  for (const names of entries) byPrefix.set(names.tenantDbPrefix, [...(byPrefix.get(names.tenantDbPrefix) ?? []), names])
  // Prefixes 16 at once: the checkpoint each DROP DATABASE waits for is shared by the drops waiting
  // together (345 databases: 5.5 s, against 6.6-12 s 8 at once).
  const limit = pLimit(16)
  await Promise.all([...byPrefix.values()].map(async (group) => await limit(async () => {
    for (const names of group) {
      try {
        await dropSiloDatabases(databaseUrl, names)
      } catch (error) {
        ok = false
        process.stderr.write(`could not drop the test databases of ${names.catalogDatabase} (${names.tenantDbPrefix}*): ${(error as Error).message}\n`)
      }
    }
  })))
  process.stderr.write(`dropped what ${entries.length} test catalogs made in ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
  return ok
}
