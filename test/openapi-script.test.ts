// `npm run lint:openapi` writes the served document from the real app on a throwaway catalog it
// then drops, unchecked: run as a process on a server holding the shipped defaults (catalog
// `silo_catalog`, prefix `silo_`: the catalog's name starts with the prefix) and a second catalog
// with the same prefix, it must leave every database and role as it was.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from './helpers/tap.js'
import { loadConfig } from '../src/config.js'
import { openSilo } from '../src/silo.js'
import { runProcess } from './helpers/cli.js'
import { root } from './helpers/compiled.js'
import { startEmbeddedServer } from './helpers/embedded.js'
import { serverObjects } from './helpers/servers.js'
import { TEST_SECRET_KEY } from './helpers/silo.js'

const server = await startEmbeddedServer()
const out = await mkdtemp(join(tmpdir(), 'silo-openapi-'))
t.teardown(async () => {
  await server.destroy()
  await rm(out, { recursive: true, force: true })
})

t.test('the OpenAPI script drops its own catalog and nothing else: the shipped defaults, a second catalog on the prefix, postgres, template0, template1', async (t) => {
  for (const catalog of [undefined, 'silo_other']) {
    const config = loadConfig({ DATABASE_URL: server.url, SECRET_KEY: TEST_SECRET_KEY, LOG_LEVEL: 'silent', TENANT_SPARES: 1, ...(catalog === undefined ? {} : { CATALOG_DATABASE: catalog }) }, { env: false, dotenv: false })
    t.equal(config.tenantDbPrefix, 'silo_', 'the shipped prefix')
    const silo = await openSilo(config)
    try {
      await silo.provisioner.create({ slug: catalog === undefined ? 'alpha' : 'bravo', domains: [catalog === undefined ? 'alpha.test' : 'bravo.test'] })
      await silo.spares?.settled()
    } finally {
      await silo.close()
    }
  }
  const before = await serverObjects(server.url)
  t.ok(['silo_catalog', 'silo_other', 'silo_alpha', 'silo_bravo', 'postgres', 'template0', 'template1'].every((name) => before.databases.includes(name)), 'both catalogs, their tenants and the server\'s own databases are there')
  t.ok(before.databases.some((name) => name.startsWith('silo__spare_')), 'and spares on the shared prefix')

  const file = join(out, 'openapi.json')
  const run = await runProcess(join(root, 'node_modules', '.bin', 'tsx'), ['scripts/openapi.ts', file], { cwd: root, env: { ...process.env, DATABASE_URL: server.url } })
  t.equal(run.code, 0, `the script succeeded ${run.stderr}`)
  const document = JSON.parse(await readFile(file, 'utf8')) as { openapi?: string }
  t.match(document.openapi, /^3\./, 'and wrote the document')
  t.same(await serverObjects(server.url), before, 'every database and role is as it was')
})
