/**
 * Runs a command with DATABASE_URL set: the caller's when it is set, otherwise that of an
 * embedded PostgreSQL started in a fresh temporary directory and removed afterwards.
 * `npm test` and `npm run bench` go through it, so both work on a machine with no PostgreSQL.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded-postgres.js'

// --throwaway: the embedded server (when one is started) skips fsync: for the test suite, whose
// data is deleted afterwards; benchmarks keep the durable settings they measure.
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

const child = spawn(command, args, { stdio: 'inherit', env })
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => { child.kill(signal) })
const code = await new Promise<number>((resolve) => {
  child.on('exit', (exitCode, signal) => { resolve(exitCode ?? (signal === null ? 1 : 128)) })
  child.on('error', (error) => { process.stderr.write(`${error.message}\n`); resolve(127) })
})
await embedded?.stop()
if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
process.exit(code)
