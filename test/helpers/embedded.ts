import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { startEmbeddedServer, type EmbeddedServer } from '../../src/testing/embedded-server.js'
import { openSilo, type Silo } from '../../src/silo.js'
import { closeInTeardown, testConfig, type Teardown } from './silo.js'

export { startEmbeddedServer, type EmbeddedServer } from '../../src/testing/embedded-server.js'

/**
 * A Silo and its HTTP app whose catalog lives on an embedded PostgreSQL of the test's own
 * (CATALOG_DATABASE_URL), while tenant databases stay on the DATABASE_URL server: the test can
 * take the catalog down without touching the tenants, or the machine's cluster. One teardown,
 * in order: app, core, tenant databases and roles, then the embedded server and its files.
 */
export async function embeddedCatalogApp (
  t: Teardown,
  overrides: Record<string, string | number> = {}
): Promise<{ silo: Silo, app: FastifyInstance, catalogServer: EmbeddedServer }> {
  const catalogServer = await startEmbeddedServer()
  const config = testConfig({ CATALOG_DATABASE_URL: catalogServer.url, ...overrides })
  const opened = closeInTeardown(t, config, async () => { await catalogServer.destroy() })
  const silo = opened.silo = await openSilo(config)
  const app = opened.app = await buildApp(silo, { config })
  return { silo, app, catalogServer }
}
