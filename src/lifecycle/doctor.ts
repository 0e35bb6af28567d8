import type { CatalogStore, TenantSummary } from '../catalog/catalog-store.js'
import { DEFAULT_SERVER } from '../catalog/server-store.js'
import { databaseMark, parseMark, type Mark } from '../db/object-marks.js'
import { SiloError } from '../errors.js'
import type { Ownership } from './ownership.js'
import type { Provisioner } from './provisioner.js'
import type { ServerFleet, ServerParts } from './server-fleet.js'
import { spareLockKey, spareNamePrefix } from './spare-databases.js'
import { publicExposure, type Exposure } from './server-hardening.js'
import { unanswered } from './attached-checks.js'
import { movingObjects, recoverMove, unfinishedMoves, type InterruptedMove } from './move-recovery.js'
import { templateDatabaseName } from './tenant-template.js'

export type ObjectType = 'database' | 'role'

/**
 * The report covers every registered server. An object on a server other than `default` is named
 * `<name>@<server>` (a database or role name holds no `@`); on `default` by its name alone, as
 * before servers existed.
 */
export interface DoctorReport {
  /** The catalog whose marks decide what is Silo's here. */
  catalog: { id: string, database: string }
  /** Servers that did not answer: nothing on them was checked. */
  unreachableServers: string[]
  /** Databases carrying this catalog's mark that it does not know (no tenant, template or complete spare). */
  orphanDatabases: string[]
  /** Roles carrying this catalog's mark that it does not know. */
  orphanRoles: string[]
  /** Catalog entries whose database is gone. */
  missingDatabases: string[]
  /**
   * Attached tenants whose database does not answer to their own login now (gone, password
   * changed, server down). Reported only: an attached database is not Silo's, so `--fix` never
   * removes its entry.
   */
  attachedUnreachable: string[]
  /** Catalog entries left provisioning, failed or dropping by an interrupted operation. */
  stuck: Array<{ slug: string, status: string }>
  /** Moves whose mover stopped before their end (see move-recovery.ts): `--fix` finishes or undoes each. */
  interruptedMoves: InterruptedMove[]
  /** Databases and roles of this catalog's tenants with no mark at all (made before marks existed). */
  unmarked: Array<{ type: ObjectType, name: string }>
  /**
   * Objects named with the tenant prefix that are not this catalog's: no mark (a template or
   * spare of a Silo from before marks, or somebody else's), or another catalog's mark. Listed so
   * nobody wonders; never touched.
   */
  notOurs: Array<{ type: ObjectType, name: string, reason: string }>
  /**
   * Databases every tenant role can reach through PUBLIC (a warning, not a problem of the
   * catalog's: `tenants harden` closes PostgreSQL's own).
   */
  exposed: Exposure[]
}

/** What `doctor --fix` does: `repair` at once, `drop` only when confirmed (`--yes`). */
export interface DoctorPlan {
  repair: {
    /** Tenants left half-made or half-dropped: removed, as a re-run of their drop. */
    tenants: Array<{ slug: string, status: string }>
    /** This catalog's tenant objects without a mark: marked. */
    mark: Array<{ type: ObjectType, name: string }>
    /** Interrupted moves: undone (before their switch) or finished (after it). */
    moves: InterruptedMove[]
  }
  drop: {
    databases: string[]
    roles: string[]
    /** Tenants whose database is missing: their catalog entries (and domains) removed. */
    tenants: string[]
  }
}

export interface DoctorRepair {
  dropped: { databases: string[], roles: string[], tenants: string[] }
  marked: Array<{ type: ObjectType, name: string }>
  /** Interrupted moves undone or finished, by slug. */
  moves: string[]
  /** Planned drops not carried out because `--yes` was not given. */
  unconfirmed: DoctorPlan['drop']
  /** Entries another process is working on right now, or that changed hands since the diagnosis: left alone. */
  skipped: Array<{ name: string, reason: string }>
}

export interface DoctorDeps {
  catalog: CatalogStore
  /** Every registered server, each checked with its own admin connection and marks. */
  servers: ServerFleet
  provisioner: Provisioner
  prefix: string
}

/** Never candidates, whatever their names or comments. */
const POSTGRES_DATABASES = ['postgres', 'template0', 'template1']

export const isHealthy = (report: DoctorReport): boolean =>
  report.orphanDatabases.length + report.orphanRoles.length + report.missingDatabases.length + report.attachedUnreachable.length +
  report.stuck.length + report.unmarked.length + report.unreachableServers.length + report.interruptedMoves.length === 0

export const planIsEmpty = (plan: DoctorPlan): boolean =>
  plan.repair.tenants.length + plan.repair.mark.length + plan.repair.moves.length + plan.drop.databases.length + plan.drop.roles.length + plan.drop.tenants.length === 0

/** An object's name in the report: bare on `default`, `<name>@<server>` elsewhere. */
export const qualified = (name: string, server: string): string => server === DEFAULT_SERVER ? name : `${name}@${server}`

/** The name and server of a report entry. */
export function unqualified (entry: string): { name: string, server: string } {
  const at = entry.lastIndexOf('@')
  return at === -1 ? { name: entry, server: DEFAULT_SERVER } : { name: entry.slice(0, at), server: entry.slice(at + 1) }
}

/** What the catalog knows by name on one server: the databases and roles of its tenants there, and its template. */
function knownNames (ownership: Ownership, prefix: string, tenants: TenantSummary[]): { databases: Set<string>, roles: Set<string> } {
  const template = templateDatabaseName(prefix, ownership.identity)
  return {
    databases: new Set([...tenants.map((tenant) => tenant.databaseName), template]),
    roles: new Set([...tenants.map((tenant) => tenant.databaseUser), template])
  }
}

/** A complete spare (its database's mark records a version) is this catalog's own, in use. */
const isCompleteSpare = (mark: Mark | null): boolean => mark?.kind === 'spare' && mark.detail !== undefined

/**
 * Compares every registered server with the catalog. Only what carries this catalog's mark can
 * be an orphan, and only the tenants placed on a server are looked for there; the catalog
 * database, the admin connection's database and role, PostgreSQL's own databases and
 * superusers are never candidates, whatever their names. A server that does not answer is
 * reported, and nothing on it is judged.
 */
export async function diagnose (deps: DoctorDeps): Promise<DoctorReport> {
  const [tenants, servers, moves] = await Promise.all([deps.catalog.listTenants(), deps.catalog.servers.list(), unfinishedMoves(deps.catalog)])
  // Objects of a move under way, or of one interrupted (repaired as a whole), are no orphans.
  const moving = movingObjects([...moves.running, ...moves.interrupted], tenants)
  const report: DoctorReport = {
    catalog: { ...deps.servers.default.ownership.identity },
    unreachableServers: [],
    orphanDatabases: [],
    orphanRoles: [],
    missingDatabases: [],
    attachedUnreachable: [],
    stuck: [],
    interruptedMoves: moves.interrupted.map(({ id, slug, from, to, phase }) => ({ id, slug, from, to, phase })),
    unmarked: [],
    notOurs: [],
    exposed: []
  }
  for (const server of servers) {
    let parts: ServerParts
    try {
      parts = await deps.servers.answering(server)
    } catch (error) {
      if (!(error instanceof SiloError) || error.code !== 'SERVER_UNAVAILABLE') throw error
      report.unreachableServers.push(server.name)
      continue
    }
    await diagnoseServer(deps, parts, tenants.filter((tenant) => tenant.server === server.name), report, moving.get(server.name))
  }
  report.attachedUnreachable = await unanswered(deps.catalog, tenants.filter((tenant) => tenant.attached && tenant.status === 'active').map((tenant) => tenant.slug))
  report.stuck = tenants.filter((tenant) => tenant.status === 'provisioning' || tenant.status === 'failed' || tenant.status === 'dropping')
    .map((tenant) => ({ slug: tenant.slug, status: tenant.status }))
  return report
}

/** Adds what one server holds against the tenants placed on it to `report`. */
async function diagnoseServer (deps: DoctorDeps, server: ServerParts, tenants: TenantSummary[], report: DoctorReport, moving = new Set<string>()): Promise<void> {
  const { ownership, admin } = server
  const { prefix } = deps
  const [databases, roles, session, exposed] = await Promise.all([
    admin.listDatabaseObjects(), admin.listRoleObjects(), admin.session(), publicExposure(admin.knex)
  ])
  // Attached databases and their roles are known, and not Silo's: neither orphans nor to be marked.
  const provisioned = tenants.filter((tenant) => !tenant.attached)
  const known = knownNames(ownership, prefix, provisioned)
  const attachedDatabases = new Set(tenants.filter((tenant) => tenant.attached).map((tenant) => tenant.databaseName))
  const attachedRoles = new Set(tenants.filter((tenant) => tenant.attached).map((tenant) => tenant.databaseUser))
  const protectedDatabases = new Set([...POSTGRES_DATABASES, ownership.identity.database, session.database, ...attachedDatabases])
  const found: Pick<DoctorReport, 'orphanDatabases' | 'orphanRoles' | 'unmarked' | 'notOurs'> = { orphanDatabases: [], orphanRoles: [], unmarked: [], notOurs: [] }
  const completeSpares = new Set<string>()
  for (const database of databases) {
    if (protectedDatabases.has(database.name)) continue
    const mark = databaseMark(database)
    if (ownership.claimOf(mark) === 'ours' && isCompleteSpare(parseMark(database.comment))) completeSpares.add(database.name)
    classify(found, ownership, 'database', database.name, mark, known.databases.has(database.name) || completeSpares.has(database.name), prefix)
  }
  for (const role of roles) {
    if (role.superuser || role.name === session.role || attachedRoles.has(role.name)) continue
    classify(found, ownership, 'role', role.name, parseMark(role.comment), known.roles.has(role.name) || completeSpares.has(role.name), prefix)
  }
  // A spare an instance is making right now is not complete yet, and not an orphan either; nor
  // is the copy (or the source) of a move under way.
  const making = new Set<string>(moving)
  for (const name of new Set([...found.orphanDatabases, ...found.orphanRoles])) {
    if (name.startsWith(spareNamePrefix(prefix)) && await deps.catalog.isLocked(spareLockKey(name))) making.add(name)
  }
  const name = (object: string): string => qualified(object, server.name)
  report.orphanDatabases.push(...found.orphanDatabases.filter((object) => !making.has(object)).map(name))
  report.orphanRoles.push(...found.orphanRoles.filter((object) => !making.has(object)).map(name))
  report.unmarked.push(...found.unmarked.map((entry) => ({ ...entry, name: name(entry.name) })))
  report.notOurs.push(...found.notOurs.map((entry) => ({ ...entry, name: name(entry.name) })))
  report.exposed.push(...exposed.map((entry) => ({ ...entry, database: name(entry.database) })))
  const existing = new Set(databases.map((database) => database.name))
  report.missingDatabases.push(...provisioned.filter((tenant) => tenant.status !== 'dropping' && !existing.has(tenant.databaseName)).map((tenant) => tenant.slug))
}

function classify (report: Pick<DoctorReport, 'orphanDatabases' | 'orphanRoles' | 'unmarked' | 'notOurs'>, ownership: Ownership, type: ObjectType, name: string, mark: Mark | null, known: boolean, prefix: string): void {
  const claim = ownership.claimOf(mark)
  if (claim === 'ours') {
    if (!known) (type === 'database' ? report.orphanDatabases : report.orphanRoles).push(name)
  } else if (claim === 'unmarked' && known) {
    report.unmarked.push({ type, name })
  } else if (name.startsWith(prefix) || (claim === 'theirs' && known)) {
    report.notOurs.push({
      type,
      name,
      reason: mark === null
        ? 'no Silo mark (made by someone else, or a template or spare of a Silo from before ownership marks)'
        : `marked by another catalog (${mark.catalogDatabase}, id ${mark.catalogId})`
    })
  }
}

/** What `--fix` would do for this report. */
export function planRepair (report: DoctorReport): DoctorPlan {
  const stuck = new Set(report.stuck.map((entry) => entry.slug))
  return {
    repair: { tenants: report.stuck, mark: report.unmarked, moves: report.interruptedMoves },
    drop: {
      databases: report.orphanDatabases,
      roles: report.orphanRoles,
      tenants: report.missingDatabases.filter((slug) => !stuck.has(slug))
    }
  }
}

/**
 * Carries out the plan: the repairs always, the drops only when `confirmed`. Every drop is
 * checked again at the moment it is made: a tenant through the provisioner, under its lock (an
 * operation in progress is skipped, not raced); an orphan only if the catalog still does not
 * know it and it still carries this catalog's mark.
 */
export async function repair (deps: DoctorDeps, plan: DoctorPlan, options: { confirmed: boolean }): Promise<DoctorRepair> {
  const result: DoctorRepair = {
    dropped: { databases: [], roles: [], tenants: [] },
    marked: [],
    moves: [],
    unconfirmed: { databases: [], roles: [], tenants: [] },
    skipped: []
  }
  for (const move of plan.repair.moves) {
    if (await recoverMove(deps, move)) result.moves.push(move.slug)
    else result.skipped.push({ name: move.slug, reason: 'another operation on it is in progress' })
  }
  await dropTenants(deps, plan.repair.tenants.map((entry) => entry.slug), result)
  if (plan.repair.mark.length > 0) {
    const tenants = await deps.catalog.listTenants()
    const planned = new Set(plan.repair.mark.map((entry) => `${entry.type}:${entry.name}`))
    for (const server of new Set(plan.repair.mark.map((entry) => unqualified(entry.name).server))) {
      const marked = await (await deps.servers.byName(server)).ownership.markKnown(tenants.filter((tenant) => tenant.server === server))
      result.marked.push(...marked.map(({ kind, name }) => ({ type: kind, name: qualified(name, server) })).filter((entry) => planned.has(`${entry.type}:${entry.name}`)))
    }
  }
  if (!options.confirmed) {
    result.unconfirmed = plan.drop
    return result
  }
  await dropTenants(deps, plan.drop.tenants, result)
  // Re-read: a create may have claimed a name since the diagnosis.
  const tenants = await deps.catalog.listTenants()
  for (const [type, entries] of [['database', plan.drop.databases], ['role', plan.drop.roles]] as const) {
    for (const entry of entries) {
      const { name, server } = unqualified(entry)
      const { ownership } = await deps.servers.byName(server)
      const known = knownNames(ownership, deps.prefix, tenants.filter((tenant) => tenant.server === server))
      if ((type === 'database' ? known.databases : known.roles).has(name)) {
        result.skipped.push({ name: entry, reason: 'the catalog knows it now' })
      } else if (await (type === 'database' ? ownership.dropDatabase(name) : ownership.dropRole(name)) === 'ours') {
        (type === 'database' ? result.dropped.databases : result.dropped.roles).push(entry)
      }
    }
  }
  return result
}

async function dropTenants (deps: DoctorDeps, slugs: string[], result: DoctorRepair): Promise<void> {
  for (const slug of slugs) {
    try {
      await deps.provisioner.drop(slug)
      result.dropped.tenants.push(slug)
    } catch (error) {
      if (error instanceof SiloError && error.code === 'TENANT_NOT_FOUND') continue
      if (!(error instanceof SiloError) || error.code !== 'TENANT_LOCKED') throw error
      result.skipped.push({ name: slug, reason: 'another operation on it is in progress' })
    }
  }
}
