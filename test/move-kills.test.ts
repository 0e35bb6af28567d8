// A mover killed at each of its steps, as a crash would (a process of its own, SIGKILLed there):
// what it leaves, how the tenant is served meanwhile (a freeze lapses by itself; requests wait,
// then 503 with Retry-After), and what doctor does. Two real servers: DATABASE_URL's (`default`)
// and an embedded one of this file's own (`second`).
import t from './helpers/tap.js'
import type { MoveStep } from '../src/lifecycle/tenant-mover.js'
import { diagnose, isHealthy, planRepair, repair } from '../src/lifecycle/doctor.js'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { runCli } from './helpers/cli.js'
import { childEnv, root } from './helpers/compiled.js'
import { moveProbes } from './helpers/moves.js'
import { secondServer } from './helpers/servers.js'
import { anotherInstance, TEST_SECRET_KEY, testApp } from './helpers/silo.js'
import { eventually } from './helpers/wait.js'

const HOLD_MS = 1500
const { silo, app } = await testApp(t, { MOVE_HOLD_MS: HOLD_MS })
const second = await secondServer(t)
await silo.serverRegistry.add({ name: 'second', url: second.url })
const prefix = silo.config.tenantDbPrefix
const env = {
  DATABASE_URL: silo.config.databaseUrl ?? '',
  CATALOG_DATABASE: silo.config.catalogDatabase,
  TENANT_DB_PREFIX: prefix,
  SECRET_KEY: TEST_SECRET_KEY,
  TENANT_SPARES: 0,
  LOG_LEVEL: 'silent',
  MOVE_HOLD_MS: HOLD_MS
}

const { defaultUrl, doctorDeps, exists, captureLeft, articleCount, serverOf, createOnDefault, served } = moveProbes(silo, app)

/**
 * Runs a mover in a process of its own (test/helpers/move-runner.ts) that stops before `step`,
 * and SIGKILLs it there: what a crash at that point leaves.
 */
async function killMoverAt (slug: string, step: MoveStep, extraEnv: Record<string, string | number> = {}): Promise<void> {
  const child = spawn(process.execPath, [join(root, 'dist/test/helpers/move-runner.js')], {
    cwd: root, env: childEnv({ ...env, ...extraEnv, MOVE_SLUG: slug, MOVE_TO: 'second', MOVE_HANG_AT: step }), stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const exited = new Promise((resolve) => { child.on('close', resolve) })
  const reached = new Promise<boolean>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes(`at ${step}\n`)) resolve(true)
    })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.on('close', () => { resolve(false) })
  })
  if (!await reached) throw new Error(`the mover exited before ${step}: ${output}`)
  child.kill('SIGKILL')
  await exited
}

t.test('a mover killed at any step: the tenant is served (from its source before the switch, its target after), and doctor --fix finishes or undoes the move', async (t) => {
  const steps: MoveStep[] = ['target', 'capture', 'copy', 'catch-up', 'freeze', 'switch', 'drop-source']
  for (const step of steps) {
    const slug = `kill-${step}`
    const name = `${prefix}${slug.replaceAll('-', '_')}`
    await createOnDefault(slug)
    await killMoverAt(slug, step)
    const switched = step === 'drop-source'
    // Killed while frozen (before 'switch' the source's tables are locked too): the freeze lapses by itself.
    t.ok(await eventually(async () => await served(`${slug}.test`) === 200, 15000, 25), `${step}: served again without any repair`)
    t.equal(await serverOf(slug), switched ? 'second' : 'default', `${step}: from ${switched ? 'its target' : 'its source'}`)
    const report = await diagnose(doctorDeps)
    t.match(report.interruptedMoves, [{ slug }], `${step}: doctor finds the interrupted move`)
    t.same(report.orphanDatabases, [], `${step}: and counts its copies as the move's, not as orphans`)
    const repaired = await repair(doctorDeps, planRepair(report), { confirmed: false })
    t.same(repaired.moves, [slug], `${step}: --fix (without --yes) finishes or undoes it`)
    t.ok(isHealthy(await diagnose(doctorDeps)), `${step}: healthy afterwards`)
    t.same(await exists(switched ? defaultUrl : second.url, name), { database: false, role: false }, `${step}: the copy not served is gone`)
    if (!switched) t.equal(await captureLeft(name), 0, `${step}: the capture is removed`)
    t.match((await silo.catalog.moves.ofTenant(slug))[0], { phase: switched ? 'done' : 'failed', error: /doctor/ }, `${step}: the move's record says what happened`)
    t.equal(await articleCount(slug), 5, `${step}: every row is there`)
    t.equal(await served(`${slug}.test`), 200)
    await silo.provisioner.drop(slug)
  }
})

t.test('while a move holds the freeze, its requests wait MOVE_HOLD_MS, then get 503 TENANT_UNAVAILABLE with Retry-After; other tenants are served; a retry after doctor moves it', async (t) => {
  await createOnDefault('frozen')
  await createOnDefault('bystander')
  // The mover's freeze outlasts this instance's hold: the request's wait ends by its own bound.
  await killMoverAt('frozen', 'switch', { MOVE_HOLD_MS: 30000 })
  t.equal((await silo.catalog.tenantBySlug('frozen'))?.frozen, true, 'the tenant is frozen')
  const started = performance.now()
  const [held, bystander] = await Promise.all([
    app.inject({ url: '/articles?limit=1', headers: { host: 'frozen.test' } }),
    app.inject({ url: '/articles?limit=1', headers: { host: 'bystander.test' } })
  ])
  const waited = performance.now() - started
  t.equal(bystander.statusCode, 200, 'another tenant is served meanwhile')
  t.equal(held.statusCode, 503)
  t.equal(held.json().code, 'TENANT_UNAVAILABLE')
  t.equal(held.headers['retry-after'], '1', 'with Retry-After')
  t.ok(waited >= HOLD_MS - 50, `after waiting its hold (${Math.round(waited)} ms of ${HOLD_MS})`)
  const other = await anotherInstance(t, { ...silo.config, moveHoldMs: 200 })
  const short = await other.app.inject({ url: '/articles?limit=1', headers: { host: 'frozen.test' } })
  t.equal(short.statusCode, 503, 'every instance holds it (this one for its own MOVE_HOLD_MS)')
  const fixed = await runCli(['doctor', '--fix'], env)
  t.equal(fixed.code, 0, fixed.stderr)
  t.match(fixed.stdout, /moves undone or finished: frozen/)
  t.equal(await served('frozen.test'), 200, 'doctor lifts the freeze at once')
  const retried = await runCli(['move', 'frozen', '--to', 'second'], env)
  t.equal(retried.code, 0, retried.stderr)
  t.match(retried.stdout, /moved frozen from default to second: 5 rows copied/)
  t.notOk(`${retried.stdout}${retried.stderr}`.includes(new URL(second.url).password), 'no password printed')
  t.equal(await served('frozen.test'), 200)
})
