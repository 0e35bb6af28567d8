import http from 'node:http'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from './helpers/tap.js'
import { runCli } from './helpers/cli.js'
import { killPostmaster, postmasterPid, processRuns } from './helpers/processes.js'
import { spawnServer } from './helpers/server.js'
import { eventually } from './helpers/wait.js'

/**
 * Embedded dev mode (no DATABASE_URL) with real processes: the compiled server and CLI on one
 * DATA_DIR, killed and signalled as a developer would. Whatever happens, the teardown stops
 * every postmaster the data directory ever had and removes the directory.
 */
const dataDir = await mkdtemp(join(tmpdir(), 'silo-embedded-owner-'))
const pgDir = join(dataDir, 'postgres')
const postmasters = new Set<number>()
const notePostmaster = async (): Promise<number> => {
  const pid = await postmasterPid(pgDir)
  if (pid === null) throw new Error('no postmaster.pid')
  postmasters.add(pid)
  return pid
}
t.teardown(async () => {
  const current = await postmasterPid(pgDir)
  if (current !== null) postmasters.add(current)
  for (const pid of postmasters) await killPostmaster(pid)
  await rm(dataDir, { recursive: true, force: true })
})

const env = {
  DATA_DIR: dataDir,
  PORT: 0,
  LOG_LEVEL: 'info',
  DATABASE_URL: undefined,
  SECRET_KEY: undefined,
  ADMIN_TOKEN: undefined,
  CATALOG_DATABASE: undefined,
  TENANT_DB_PREFIX: undefined,
  CATALOG_DATABASE_URL: undefined,
  HOST: undefined
}

async function articlesStatus (port: number): Promise<number> {
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/articles', headers: { host: 'acme.localhost' }, agent: false }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.setTimeout(10000, () => { req.destroy(new Error('timed out')) })
    req.on('error', reject)
    req.end()
  })
}

const exists = async (path: string): Promise<boolean> => await stat(path).then(() => true, () => false)

t.test('a server started after a kill -9 of the previous one takes over its PostgreSQL and stops it on SIGTERM', async (t) => {
  const first = spawnServer(t, env)
  t.equal(await articlesStatus(await first.listening(180000)), 200, 'the first server serves the demo tenant')
  const postmaster = await notePostmaster()
  first.kill('SIGKILL')
  await first.exited
  t.ok(processRuns(postmaster), 'after kill -9 the embedded PostgreSQL is still running (nothing could stop it)')

  const second = spawnServer(t, env)
  const port = await second.listening(60000)
  t.equal(await postmasterPid(pgDir), postmaster, 'the second server uses the PostgreSQL left running')
  t.equal(await articlesStatus(port), 200)

  const exit = await second.stop()
  t.same(exit, { code: 0, signal: null }, 'the second server exits cleanly')
  if (exit.code !== 0) t.comment(second.output().slice(-1000))
  t.ok(await eventually(() => !processRuns(postmaster)), 'and it stopped the PostgreSQL it took over')
  t.notOk(await exists(join(pgDir, 'postmaster.pid')), 'with a clean shutdown (postmaster.pid removed)')
})

t.test('a CLI command while the server runs joins its PostgreSQL and leaves it running', async (t) => {
  const server = spawnServer(t, env)
  const port = await server.listening(60000)
  const postmaster = await notePostmaster()

  const listed = await runCli(['list'], env)
  t.equal(listed.code, 0, listed.stderr)
  t.match(listed.stdout, /acme\s+active/)
  t.ok(processRuns(postmaster), 'the PostgreSQL still runs after the CLI exited')
  t.equal(await postmasterPid(pgDir), postmaster, 'the same one')
  t.equal(await articlesStatus(port), 200, 'and the server still serves')

  const exit = await server.stop()
  t.same(exit, { code: 0, signal: null }, 'the server exits cleanly')
  if (exit.code !== 0) t.comment(server.output().slice(-1000))
  t.ok(await eventually(() => !processRuns(postmaster)), 'the server, its owner, stops it on shutdown')
})

t.test("a CLI command that finds a dead server's PostgreSQL takes it over and stops it when done", async (t) => {
  const server = spawnServer(t, env)
  await server.listening(60000)
  const postmaster = await notePostmaster()
  server.kill('SIGKILL')
  await server.exited

  const listed = await runCli(['list'], env)
  t.equal(listed.code, 0, listed.stderr)
  t.match(listed.stdout, /acme\s+active/)
  t.ok(await eventually(() => !processRuns(postmaster)), 'no PostgreSQL is left behind')
})
