import type { CatalogStore, TenantRecord } from '../catalog/catalog-store.js'
import { isRegisteredServer, unreadableCredential } from '../catalog/catalog-store.js'
import { SiloError, serverNotFound, tenantStateConflict, tenantUnavailable } from '../errors.js'
import { refusal } from './placement.js'
import { tenantNotFoundBySlug } from './provisioner.js'
import type { ServerFleet, ServerParts } from './server-fleet.js'
import type { TenantMigrator } from './tenant-migrator.js'
import { assertSlug } from './tenant-names.js'

/** A move that passed its checks: the tenant as read under its lock, and both servers answering. */
export interface MovePlan {
  tenant: TenantRecord
  source: ServerParts
  target: ServerParts
}

/**
 * Every refusal of a move, before anything is made: an unknown tenant or server; a tenant that is
 * attached (its database is not Silo's), not active (suspended, half-made, being dropped), not on
 * the newest schema, or already on that server; a target that is draining, disabled or full, or a
 * server that does not answer; a target that holds a database or role of the tenant's name
 * already (another catalog's, or an earlier move's copy: `doctor` tells which).
 */
export async function checkMove (deps: { catalog: CatalogStore, servers: ServerFleet, migrator: TenantMigrator }, slug: string, to: string): Promise<MovePlan> {
  const { catalog, servers, migrator } = deps
  assertSlug(slug)
  const tenant = await catalog.tenantBySlug(slug)
  if (tenant === null) throw tenantNotFoundBySlug(slug)
  if (tenant.attached) throw new SiloError('MOVE_REFUSED', `Tenant ${slug} is attached: its database is not Silo's to move`)
  if (tenant.status !== 'active') throw tenantStateConflict(slug, tenant.status)
  const latest = await migrator.latestVersion()
  if (tenant.schemaVersion !== latest) {
    throw new SiloError('MOVE_REFUSED', `Tenant ${slug} is on schema ${tenant.schemaVersion ?? '(none)'}, not the newest (${latest ?? '(none)'}): migrate it first`)
  }
  const unreadable = unreadableCredential(tenant)
  if (unreadable !== undefined) throw tenantUnavailable(`The credential of tenant ${slug} cannot be read: ${unreadable.message}`, unreadable)
  const records = await catalog.servers.list()
  const targetRecord = records.find((record) => record.name === to)
  if (targetRecord === undefined) throw serverNotFound(to)
  if (isRegisteredServer(tenant.server) && targetRecord.id === tenant.server.id) throw new SiloError('MOVE_REFUSED', `Tenant ${slug} is on server ${to} already`)
  const why = refusal(targetRecord)
  if (why !== undefined) throw new SiloError('SERVER_NOT_ACCEPTING', `Server ${to} takes no new tenants: ${why}`)
  const sourceRecord = records.find((record) => record.id === tenant.server.id)
  if (sourceRecord === undefined) throw new SiloError('MOVE_REFUSED', `Tenant ${slug} is on no registered server`)
  const [source, target] = await Promise.all([servers.answering(sourceRecord), servers.answering(targetRecord)])
  const { name, user } = tenant.database
  if (await target.admin.databaseOrRoleExists(name) || await target.admin.databaseOrRoleExists(user)) {
    throw new SiloError('MOVE_REFUSED', `Server ${to} holds a database or role named ${name} already (another catalog's, or the copy of an earlier move: \`tenants doctor\` tells which)`)
  }
  return { tenant, source, target }
}
