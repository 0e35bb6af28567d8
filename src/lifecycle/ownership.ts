import type { ServerAdmin } from '../db/server-admin.js'
import { databaseMark, markText, parseMark, type CatalogIdentity, type Mark, type ObjectKind } from '../db/object-marks.js'

/** Whose an object on the server is, as far as its mark tells. */
export type Claim = 'ours' | 'theirs' | 'unmarked' | 'absent'

/** The tenant objects of a catalog, by name, for marking those made before marks existed. */
export interface KnownTenantObjects {
  databaseName: string
  databaseUser: string
  /** An attached tenant's database and role are not Silo's: never marked. */
  attached?: boolean
}

/**
 * This catalog's claim on the server's objects: the marks it writes, and drops that check
 * them first. Whatever Silo drops goes through here, so nothing another catalog marked is ever
 * dropped, whatever its name.
 */
export class Ownership {
  readonly identity: CatalogIdentity
  readonly #admin: ServerAdmin

  constructor (identity: CatalogIdentity, admin: ServerAdmin) {
    this.identity = identity
    this.#admin = admin
  }

  /** The comment that marks an object as this catalog's. */
  mark (kind: ObjectKind, detail?: string): string {
    return markText(this.identity, kind, detail)
  }

  /** Whether `mark` is this catalog's, another's, or no mark at all. */
  claimOf (mark: Mark | null): Exclude<Claim, 'absent'> {
    if (mark === null) return 'unmarked'
    return mark.catalogId === this.identity.id ? 'ours' : 'theirs'
  }

  async databaseClaim (name: string): Promise<Claim> {
    const database = await this.#admin.databaseObject(name)
    return database === null ? 'absent' : this.claimOf(databaseMark(database))
  }

  async roleClaim (name: string): Promise<Claim> {
    const comment = await this.#admin.roleComment(name)
    return comment === undefined ? 'absent' : this.claimOf(parseMark(comment))
  }

  /**
   * Drops the database when it is this catalog's; one with no mark, or another catalog's, never.
   * Returns the claim found, so the caller knows whether it was dropped ('ours').
   */
  async dropDatabase (name: string): Promise<Claim> {
    const claim = await this.databaseClaim(name)
    if (claim === 'ours') await this.#admin.dropDatabaseUnchecked(name)
    return claim
  }

  /** Drops the role on the same terms as dropDatabase. */
  async dropRole (name: string): Promise<Claim> {
    const claim = await this.roleClaim(name)
    if (claim === 'ours') await this.#admin.dropRoleUnchecked(name)
    return claim
  }

  /**
   * Marks the databases and roles of these tenants that carry no comment at all (made by a Silo
   * from before marks): the catalog names them, which is proof enough. An object with any other
   * comment, or another catalog's mark, is left as it is. Returns what it marked.
   */
  async markKnown (known: KnownTenantObjects[]): Promise<Array<{ kind: 'database' | 'role', name: string }>> {
    const tenants = known.filter((tenant) => tenant.attached !== true)
    if (tenants.length === 0) return []
    const [databases, roles] = await Promise.all([this.#admin.listDatabaseObjects(), this.#admin.listRoleObjects()])
    const uncommentedDatabases = new Set(databases.filter((database) => database.comment === null).map((database) => database.name))
    const uncommentedRoles = new Set(roles.filter((role) => role.comment === null).map((role) => role.name))
    const marked: Array<{ kind: 'database' | 'role', name: string }> = []
    const tenantMark = this.mark('tenant')
    for (const tenant of tenants) {
      if (uncommentedRoles.has(tenant.databaseUser)) {
        await this.#admin.setRoleComment(tenant.databaseUser, tenantMark)
        marked.push({ kind: 'role', name: tenant.databaseUser })
      }
      if (uncommentedDatabases.has(tenant.databaseName)) {
        await this.#admin.setDatabaseComment(tenant.databaseName, tenantMark)
        marked.push({ kind: 'database', name: tenant.databaseName })
      }
    }
    return marked
  }
}
