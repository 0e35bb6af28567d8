import pg from 'pg'
import type { CatalogStore, TenantSummary } from '../catalog/catalog-store.js'
import type { MoveRecord } from '../catalog/tenant-moves.js'
import { tenantConnection } from '../catalog/tenant-connection.js'
import { tenantTables } from '../db/tenant-tables.js'
import { removeCapture } from './change-capture.js'
import type { ServerFleet } from './server-fleet.js'

/** A move whose record never ended and whose tenant no operation holds: its mover stopped (killed, crashed). */
export interface InterruptedMove {
  id: string
  slug: string
  from: string
  to: string
  phase: MoveRecord['phase']
}

const tenantLockKey = (slug: string): string => `tenant:${slug}`

/**
 * The unfinished moves of the catalog, split into those running now (their tenant's lock is held:
 * a mover is at work) and those interrupted (nobody holds it).
 */
export async function unfinishedMoves (catalog: CatalogStore): Promise<{ running: MoveRecord[], interrupted: MoveRecord[] }> {
  const running: MoveRecord[] = []
  const interrupted: MoveRecord[] = []
  for (const move of await catalog.moves.unfinished()) {
    (await catalog.isLocked(tenantLockKey(move.slug)) ? running : interrupted).push(move)
  }
  return { running, interrupted }
}

/**
 * The database and role names a running move is making or leaving, by server name: on its target
 * (the copy) and on its source (kept until dropped after the switch). `doctor` does not count them
 * as orphans while the move runs.
 */
export function movingObjects (running: MoveRecord[], tenants: TenantSummary[]): Map<string, Set<string>> {
  const bySlug = new Map(tenants.map((tenant) => [tenant.slug, tenant]))
  const names = new Map<string, Set<string>>()
  for (const move of running) {
    const tenant = bySlug.get(move.slug)
    if (tenant === undefined) continue
    for (const server of [move.from, move.to]) {
      const set = names.get(server) ?? new Set<string>()
      set.add(tenant.databaseName).add(tenant.databaseUser)
      names.set(server, set)
    }
  }
  return names
}

/**
 * Finishes what an interrupted move left, under the tenant's lock (skipped, false, when an
 * operation holds it now). Not switched (the tenant is still on its source): its freeze lifted,
 * the change capture removed from its source, the half-made copy dropped from the target (only
 * what carries this catalog's mark), and the move recorded failed. Switched (the tenant is on the
 * target): the source dropped unless it was to be kept, and the move recorded done. A tenant
 * dropped since: the move recorded failed.
 */
export async function recoverMove (deps: { catalog: CatalogStore, servers: ServerFleet }, move: InterruptedMove): Promise<boolean> {
  const { catalog, servers } = deps
  const result = await catalog.withTenantLock(move.slug, async () => {
    const record = await catalog.moves.byId(move.id)
    if (record === null || record.finishedAt !== null) return
    const tenant = await catalog.tenantBySlug(move.slug)
    if (tenant === null || tenant.id !== record.tenantId) {
      await catalog.moves.update(move.id, { phase: 'failed', error: 'interrupted; its tenant is gone (recorded by doctor)' })
      return
    }
    const { name, user } = tenant.database
    if (tenant.server.name === record.to) {
      if (!record.keepSource) {
        const source = await servers.byName(record.from)
        await source.ownership.dropDatabase(name)
        await source.ownership.dropRole(user)
      }
      await catalog.moves.update(move.id, { phase: 'done', error: 'interrupted after its switch; finished by doctor' })
      return
    }
    await catalog.moves.unfreeze(tenant.id)
    const client = new pg.Client(tenantConnection(tenant, 'silo-doctor'))
    client.on('error', () => {})
    await client.connect()
    try {
      await removeCapture(client, await tenantTables(client))
    } finally {
      await client.end().catch(() => {})
    }
    const target = await servers.byName(record.to)
    await target.ownership.dropDatabase(name)
    await target.ownership.dropRole(user)
    await catalog.moves.update(move.id, { phase: 'failed', error: 'interrupted before its switch; undone by doctor (the tenant is served from its source)' })
  })
  return result !== undefined
}
