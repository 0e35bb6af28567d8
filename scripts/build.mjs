/**
 * Builds the compiled tree (dist/) that the CLI, the server, the tests and the image run.
 *
 *   node scripts/build.mjs               `tsc -b tsconfig.build.json` (incremental), then stamp
 *   node scripts/build.mjs --if-stale    the same, only when a source is newer than the last build
 *   node scripts/build.mjs --tests       the same tree and the tests beside it (dist/test), as
 *                                        `npm test` runs them: compiled once, not by a loader in
 *                                        each test process
 *
 * Plain JavaScript, so it runs before anything is compiled. `tsc -b` rebuilds only what changed,
 * but even its no-op check costs most of a second; the stamps (dist/.build-stamp, and
 * dist/.test-build-stamp for a build with the tests, written after every successful build) let a
 * command that finds nothing changed skip tsc altogether.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const dist = join(root, 'dist')

/** What each build compiles (tsconfig.build.json, tsconfig.test.json) and where it leaves its stamp. */
const BUILDS = {
  app: { project: 'tsconfig.build.json', dirs: ['src', 'migrations', 'seeds'], stamp: join(dist, '.build-stamp') },
  tests: { project: 'tsconfig.test.json', dirs: ['src', 'migrations', 'seeds', 'test'], stamp: join(dist, '.test-build-stamp') }
}
/** Files whose change changes the output of either build. */
const SOURCE_FILES = ['knexfile.ts', 'tsconfig.json', 'tsconfig.build.json', 'tsconfig.test.json', 'package.json']
/** Every directory whose compiled files must have a source: a compiled test of a deleted test would still run. */
const ALL_DIRS = BUILDS.tests.dirs

function walk (dir, extension) {
  const base = join(root, dir)
  if (!existsSync(base)) return []
  return readdirSync(base, { recursive: true })
    .filter((name) => name.endsWith(extension))
    .map((name) => join(dir, name))
}

/**
 * Why dist/ cannot be run as it is (by `which` build: 'app' or 'tests'), or null when it is
 * current: missing, older than a source, or holding a compiled file whose source is gone (a
 * deleted migration would still run).
 */
export function staleReason (which = 'app') {
  const { dirs, stamp: stampPath } = BUILDS[which]
  const stamp = statSync(stampPath, { throwIfNoEntry: false })
  if (stamp === undefined) return which === 'tests' ? 'dist/ holds no compiled tests' : 'dist/ has not been built'
  const sources = [...dirs.flatMap((dir) => walk(dir, '.ts')), ...SOURCE_FILES.filter((file) => existsSync(join(root, file)))]
  const newer = sources.find((file) => statSync(join(root, file)).mtimeMs > stamp.mtimeMs)
  if (newer !== undefined) return `${newer} changed since the last build`
  const orphan = orphanOutput()
  if (orphan !== undefined) return `${orphan} has no source any more`
  return null
}

/** A compiled file whose source is gone (moved or deleted), if any. */
function orphanOutput () {
  return ALL_DIRS.flatMap((dir) => walk(join('dist', dir), '.js'))
    .find((file) => !existsSync(join(root, file.slice('dist/'.length, -'.js'.length) + '.ts')))
}

/** Compiles (incrementally) and stamps dist/. Compile errors go to stderr and throw. */
export function build (which = 'app') {
  // tsc never deletes an output whose source is gone (nor does `tsc -b --clean`, which only
  // knows today's sources): start over so no compiled file outlives its source.
  if (orphanOutput() !== undefined) rmSync(dist, { recursive: true, force: true })
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', BUILDS[which].project], { cwd: root, stdio: 'inherit' })
  const now = `${new Date().toISOString()}\n`
  // The tests' build compiles everything the app's does: it leaves the app current too.
  for (const done of which === 'tests' ? ['app', 'tests'] : ['app']) writeFileSync(BUILDS[done].stamp, now)
}

/** Builds only when dist/ is stale; returns whether it built. */
export function buildIfStale (which = 'app') {
  if (staleReason(which) === null) return false
  build(which)
  return true
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2)
  try {
    const which = args.includes('--tests') ? 'tests' : 'app'
    if (args.includes('--if-stale')) buildIfStale(which)
    else build(which)
  } catch {
    // tsc has printed its errors.
    process.exit(1)
  }
}
