import t from 'tap'
import { embeddedCatalogApp } from './helpers/embedded.js'
import { createTenant } from './helpers/silo.js'
import { eventually } from './helpers/soak.js'

t.test('a tenant suspended after its cache entry expired is not served from that entry during a catalog outage', async (t) => {
  const { silo: e, app: appE, catalogServer } = await embeddedCatalogApp(t, { HOST_CACHE_TTL_MS: 200 })
  await createTenant(e, 'stark')
  // Its own notifications first: one arriving during the first look-up would keep the answer out of the cache.
  await e.syncCatalog()
  const status = async (): Promise<string> => {
    const res = await appE.inject({ url: '/tenant', headers: { host: 'stark.test' } })
    return res.statusCode === 200 ? '200' : `${res.statusCode} ${String(res.json().code)}`
  }
  t.equal(await status(), '200')
  // Expired, not gone: the entry is still counted.
  t.ok(await eventually(() => e.resolver.cached('stark.test') === undefined && e.resolver.stats().cached === 1),
    'its cache entry expired (and is kept, to be served stale)')
  await e.catalog.knex('tenants').where({ slug: 'stark' }).update({ status: 'suspended' })
  await e.syncCatalog()

  await catalogServer.stop()
  t.equal(await status(), '503 CATALOG_UNAVAILABLE', 'during the outage it is unavailable, not served as active')
  t.equal(e.resolver.stats().staleServed, 0, 'nothing was served stale')
  await catalogServer.start()
  t.ok(await eventually(async () => await status() === '403 TENANT_SUSPENDED', 20000), 'once the catalog is back, it is suspended')
})
