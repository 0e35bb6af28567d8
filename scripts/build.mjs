/**
 * Builds the compiled tree (dist/) that the CLI, the server, the tests and the image run.
 *
 *   node scripts/build.mjs             `tsc -b tsconfig.build.json` (incremental), then stamp
 *   node scripts/build.mjs --if-stale  the same, only when a source is newer than the last build
 *
 * Plain JavaScript, so it runs before anything is compiled. `tsc -b` rebuilds only what changed,
 * but even its no-op check costs most of a second; the stamp (dist/.build-stamp, written after
 * every successful build) lets a command that finds nothing changed skip tsc altogether.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const dist = join(root, 'dist')
const stampPath = join(dist, '.build-stamp')

/** What tsconfig.build.json compiles, plus the files whose change changes the output. */
const SOURCE_DIRS = ['src', 'migrations', 'seeds']
const SOURCE_FILES = ['knexfile.ts', 'tsconfig.json', 'tsconfig.build.json', 'package.json']

function walk (dir, extension) {
  const base = join(root, dir)
  if (!existsSync(base)) return []
  return readdirSync(base, { recursive: true })
    .filter((name) => name.endsWith(extension))
    .map((name) => join(dir, name))
}

/**
 * Why dist/ cannot be run as it is, or null when it is current: missing, older than a source,
 * or holding a compiled file whose source is gone (a deleted migration would still run).
 */
export function staleReason () {
  const stamp = statSync(stampPath, { throwIfNoEntry: false })
  if (stamp === undefined) return 'dist/ has not been built'
  const sources = [...SOURCE_DIRS.flatMap((dir) => walk(dir, '.ts')), ...SOURCE_FILES.filter((file) => existsSync(join(root, file)))]
  const newer = sources.find((file) => statSync(join(root, file)).mtimeMs > stamp.mtimeMs)
  if (newer !== undefined) return `${newer} changed since the last build`
  const orphan = orphanOutput()
  if (orphan !== undefined) return `${orphan} has no source any more`
  return null
}

/** A compiled file whose source is gone (moved or deleted), if any. */
function orphanOutput () {
  return SOURCE_DIRS.flatMap((dir) => walk(join('dist', dir), '.js'))
    .find((file) => !existsSync(join(root, file.slice('dist/'.length, -'.js'.length) + '.ts')))
}

/** Compiles (incrementally) and stamps dist/. Compile errors go to stderr and throw. */
export function build () {
  // tsc never deletes an output whose source is gone (nor does `tsc -b --clean`, which only
  // knows today's sources): start over so no compiled file outlives its source.
  if (orphanOutput() !== undefined) rmSync(dist, { recursive: true, force: true })
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
  writeFileSync(stampPath, `${new Date().toISOString()}\n`)
}

/** Builds only when dist/ is stale; returns whether it built. */
export function buildIfStale () {
  if (staleReason() === null) return false
  build()
  return true
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    if (process.argv.includes('--if-stale')) buildIfStale()
    else build()
  } catch {
    // tsc has printed its errors.
    process.exit(1)
  }
}
