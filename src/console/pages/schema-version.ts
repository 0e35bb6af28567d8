import { h } from '../dom.js'

/** A tenant's schema version against the newest the code has: current, behind, or none yet. */
export function schemaCell (version: string | null, newest: string | null): HTMLElement {
  const state = version === null ? 'none' : version === newest ? 'current' : 'behind'
  const label = state === 'current' ? 'current' : state === 'none' ? 'no schema' : `behind ${newest ?? ''}`
  return h('span', { class: `schema ${state}`, title: version ?? '' }, version === null ? label : `${version.replace(/\.[jt]s$/, '')} (${label})`)
}
