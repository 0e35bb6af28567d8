import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { root } from './paths.js'

export { root }
// Loaded by path from the root: the tests run compiled from dist/test, where no scripts/ is.
const { CLI_BUNDLE, staleReason } = await import(pathToFileURL(join(root, 'scripts/build.mjs')).href) as { CLI_BUNDLE: string, staleReason: (which?: 'app' | 'tests') => string | null }

/** The compiled entry points tests spawn, as `npm run tenants`, `npm start` and the image run them (the CLI bundled into one file). */
export const CLI_ENTRY = join(root, CLI_BUNDLE)
export const SERVER_ENTRY = join(root, 'dist/src/server.js')

/**
 * tap runs each test file with @tapjs/processinfo's module hook, and that hook, through
 * `process-on-spawn`, puts itself back into the NODE_OPTIONS of every process the test spawns,
 * whatever env the spawn gives: on Node 20 it loads every module of the child through a hooks
 * thread, which made a spawned CLI cost 0.56 s of CPU instead of 0.14 (`--help`), for coverage
 * bookkeeping this suite does not use (`disable-coverage`). Its listener is dropped here, in the
 * module every spawning helper imports; the test files themselves keep the hook tap gave them.
 */
function dropTapSpawnHook (): void {
  const state = (globalThis as Record<symbol, { listeners?: unknown[] } | undefined>)[Symbol.for('process-on-spawn@*:singletonId')]
  if (state?.listeners !== undefined) state.listeners.length = 0
}
dropTapSpawnHook()

/** Whether this test runs compiled, from dist/test (as `npm test` runs it), rather than through a TypeScript loader. */
const compiledTests = import.meta.url.endsWith('.js')

/**
 * Throws unless dist/ is current: a test of a stale build would pass or fail for code that is
 * not in the sources, and a compiled test older than its source is not the test you read. `npm
 * test` builds first; a test file run alone needs `npm run build:test`. Not built here: test
 * files run in parallel, and two compilers writing dist/ at once could hand a third process a
 * half-written file.
 */
export function assertBuilt (): void {
  const reason = staleReason(compiledTests ? 'tests' : 'app')
  if (reason !== null) throw new Error(`the compiled tree is stale (${reason}): run \`npm run build:test\` first (\`npm test\` does)`)
}

/**
 * Environment of a spawned CLI or server: `base` (the test's own by default) less tap's
 * child-process hook in NODE_OPTIONS (coverage bookkeeping this suite does not use, which
 * triples a CLI's start-up), then `env` on top; a value of undefined removes the variable.
 */
export function childEnv (env: Record<string, string | number | undefined>, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...base }
  const nodeOptions = (merged.NODE_OPTIONS ?? '').split(/\s+/).filter((option) => option !== '' && !option.includes('@tapjs/'))
  if (nodeOptions.length > 0) merged.NODE_OPTIONS = nodeOptions.join(' ')
  else delete merged.NODE_OPTIONS
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete merged[key]
    else merged[key] = String(value)
  }
  return merged
}
