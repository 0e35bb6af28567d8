// Whether promise hooks are on, in a process of its own (a test process has tap's own hooks on):
// opens the core and the HTTP app from its environment, as a server does, creates the tenant
// PROBE_SLUG through the admin API, and prints as JSON whether the hooks were on before, inside a
// locked operation, and after the create.
import { executionAsyncResource } from 'node:async_hooks'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { openSilo } from '../../src/silo.js'

/** With promise hooks on, a promise continuation runs with the promise as its resource. */
const hooksOn = async (): Promise<boolean> => {
  let resource: unknown
  await Promise.resolve().then(() => { resource = executionAsyncResource() })
  return resource instanceof Promise
}

const { PROBE_SLUG: slug = 'probe' } = process.env
const config = loadConfig(process.env as Record<string, string>, { env: false, dotenv: false })
const before = await hooksOn()
const silo = await openSilo(config, { listen: false, spares: false })
const app = await buildApp(silo, { config })
const during = await silo.catalog.withLock('probe:hooks', 'exclusive', hooksOn)
const created = await app.inject({
  method: 'POST', url: '/tenants', headers: { host: config.adminHost, authorization: `Bearer ${config.adminToken ?? ''}` }, payload: { slug, domains: [`${slug}.test`] }
})
const after = await hooksOn()
await app.close()
await silo.close()
process.stdout.write(JSON.stringify({ before, during, created: created.statusCode, after }) + '\n')
