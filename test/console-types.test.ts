import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from './helpers/tap.js'
import { runProcess } from './helpers/cli.js'
import { root } from './helpers/compiled.js'
import { testApp } from './helpers/silo.js'

// The console's API types are generated from the document the service serves, and the check
// `npm run lint:openapi` runs fails when they are not what that document gives: the committed
// types are those of the app under test, and a document with one operation less fails.

const { app } = await testApp(t)
await app.ready()
const out = await mkdtemp(join(tmpdir(), 'silo-console-types-'))
t.teardown(async () => { await rm(out, { recursive: true, force: true }) })
const check = async (document: unknown) => {
  const file = join(out, 'openapi.json')
  await writeFile(file, JSON.stringify(document))
  return await runProcess(join(root, 'node_modules', '.bin', 'tsx'), ['scripts/console-types.ts', '--check', file], { cwd: root })
}

t.test('the committed console types are what the served document gives', async (t) => {
  const result = await check(app.swagger())
  t.equal(result.code, 0, result.stderr)
})

t.test('an API change that is not regenerated fails the check', async (t) => {
  const document = structuredClone(app.swagger()) as { paths: Record<string, unknown> }
  t.ok('/stats' in document.paths)
  delete document.paths['/stats']
  const result = await check(document)
  t.equal(result.code, 1)
  t.match(result.stderr, /npm run console:types/, 'says how to regenerate')
})
