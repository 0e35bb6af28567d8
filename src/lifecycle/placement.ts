import type { ServerRecord } from '../catalog/server-store.js'

/** What placement reads of a server. */
export type PlacementCandidate = Pick<ServerRecord, 'name' | 'status' | 'tenants' | 'maxTenants' | 'weight'>

/** Whether the server takes a new tenant now, and if not, why (for messages). */
export function refusal (server: PlacementCandidate): string | undefined {
  if (server.status !== 'active') return `it is ${server.status}`
  if (server.maxTenants !== null && server.tenants >= server.maxTenants) return `it is full (${server.tenants} of ${server.maxTenants} tenants)`
  return undefined
}

/**
 * The servers a new tenant may go to, best first: active and not full, by fewest tenants per
 * unit of weight, then by name (so two instances placing at once order them alike). Whether a
 * server answers is the caller's to check, in this order.
 */
export function placementOrder<T extends PlacementCandidate> (servers: readonly T[]): T[] {
  return servers
    .filter((server) => refusal(server) === undefined)
    // Tenants per weight compared by cross-multiplying: integers, no rounding to break a tie.
    .sort((a, b) => a.tenants * b.weight - b.tenants * a.weight || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}
