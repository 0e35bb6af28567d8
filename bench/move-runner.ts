/**
 * The `move` row's move, in a process of its own as `tenants move` runs it (the serving instance
 * learns of the freeze and the switch through the catalog feed, and the copy does not share its
 * event loop): `node --import tsx bench/move-runner.ts '<MoveRun JSON>'` prints one MoveRun
 * result as JSON on stdout; a failed move exits with 1 and says why on stderr.
 */
import type { MoveRecord } from '../src/catalog/tenant-moves.js'
import { benchSilo, type BenchEnv } from './fixtures.js'

export interface MoveRun { env: BenchEnv, slug: string, to: string }

export interface MoveRunResult {
  move: MoveRecord
  /** When the move began and ended, ms since the epoch (performance.timeOrigin + now: comparable across processes). */
  began: number
  ended: number
  /** When each phase was reported, ms after the move began. */
  phases: Array<{ phase: string, atMs: number }>
}

const now = (): number => performance.timeOrigin + performance.now()
const { env, slug, to } = JSON.parse(process.argv[2] ?? '{}') as MoveRun
const silo = await benchSilo(env)
try {
  const phases: MoveRunResult['phases'] = []
  const began = now()
  const move = await silo.mover.move(slug, { to, onProgress: (progress) => { phases.push({ phase: progress.phase, atMs: now() - began }) } })
  const result: MoveRunResult = { move, began, ended: now(), phases }
  process.stdout.write(JSON.stringify(result) + '\n')
} catch (error) {
  process.stderr.write(`move of ${slug} to ${to} failed: ${(error as Error).message}\n`)
  process.exitCode = 1
} finally {
  await silo.close()
}
