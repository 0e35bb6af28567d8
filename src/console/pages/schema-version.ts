import { h } from '../dom.js'

/**
 * A tenant's schema version against the newest the code has: current, behind, or none yet; an
 * attached database with a schema of its own (not Silo's to migrate) is neither.
 */
export function schemaCell (version: string | null, newest: string | null, managed = true): HTMLElement {
  if (!managed) return h('span', { class: 'schema own', title: 'attached with a schema of its own: Silo does not migrate it' }, 'own schema')
  const state = version === null ? 'none' : version === newest ? 'current' : 'behind'
  const label = state === 'current' ? 'current' : state === 'none' ? 'no schema' : `behind ${newest ?? ''}`
  return h('span', { class: `schema ${state}`, title: version ?? '' }, version === null ? label : `${version.replace(/\.[jt]s$/, '')} (${label})`)
}
