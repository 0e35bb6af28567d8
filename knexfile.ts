/**
 * Knex CLI configuration, from the same factory Silo itself uses (src/db/knex-config.ts):
 *   npm run knex -- migrate:status                 # the catalog (default environment)
 *   TENANT_DATABASE_URL=postgres://silo_acme:...@host/silo_acme npm run knex -- migrate:list --env tenant
 * Day-to-day tenant migrations go through `npm run tenants -- migrate`, which knows every
 * tenant's credentials; the `tenant` environment is for inspecting one database by hand.
 */
import type { Knex } from 'knex'
import { loadConfig } from './src/config.js'
import { connectionFromUrl, knexConfig } from './src/db/knex-config.js'

const config = loadConfig()
const adminUrl = config.catalogDatabaseUrl ?? config.databaseUrl
if (adminUrl === undefined) throw new Error('knexfile: set DATABASE_URL (the embedded dev server is only started by npm start and npm test)')
const tenantUrl = process.env.TENANT_DATABASE_URL

const environments: Record<string, Knex.Config> = {
  catalog: knexConfig({ schema: 'catalog', connection: connectionFromUrl(adminUrl, config.catalogDatabase) })
}
if (tenantUrl !== undefined) environments.tenant = knexConfig({ schema: 'tenant', connection: connectionFromUrl(tenantUrl) })
environments.development = environments.catalog as Knex.Config

export default environments
