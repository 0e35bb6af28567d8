import type { Silo } from './silo.js'

export const DEMO_TENANTS = [
  { slug: 'acme', name: 'Acme Corporation', domains: ['acme.localhost'] },
  { slug: 'globex', name: 'Globex Corporation', domains: ['globex.localhost'] }
]

/** On an empty catalog, creates the demo tenants with seed articles. Returns whether it did. */
export async function ensureDemoTenants (silo: Silo): Promise<boolean> {
  const tenants = await silo.catalog.listTenants()
  if (tenants.length > 0) return false
  for (const tenant of DEMO_TENANTS) await silo.provisioner.create({ ...tenant, seed: true })
  return true
}
