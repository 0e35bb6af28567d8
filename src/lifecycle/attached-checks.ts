import pLimit from 'p-limit'
import type { CatalogStore } from '../catalog/catalog-store.js'
import { withTenantDatabase } from './tenant-context.js'

const ATTACHED_CHECKS_AT_ONCE = 8 // one connection each: never every attached database at once

/** The slugs among these attached tenants whose database does not answer a query to their own login. */
export async function unanswered (catalog: CatalogStore, slugs: string[]): Promise<string[]> {
  if (slugs.length === 0) return []
  const records = await catalog.tenantsBySlugs(slugs)
  const limit = pLimit(ATTACHED_CHECKS_AT_ONCE)
  const answers = await Promise.all([...records.values()].map(async (tenant) => await limit(async () => {
    try {
      await withTenantDatabase(tenant, async (db) => await db.raw('select 1'), { applicationName: 'silo-doctor' })
      return null
    } catch {
      return tenant.slug
    }
  })))
  return answers.filter((slug): slug is string => slug !== null).sort()
}
