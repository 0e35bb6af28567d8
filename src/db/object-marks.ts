/**
 * Ownership marks. Every database and role Silo creates carries, as its PostgreSQL comment, the
 * identity of the catalog it was made for: `silo:<catalog id>:<catalog database>:<kind>[:<detail>]`.
 * The comment is a shared object's (pg_shdescription), readable from any database without
 * connecting to the object. Names alone prove nothing: a catalog may be named with the tenant
 * prefix, and two deployments may share one server and one prefix.
 */

/** The catalog a Silo instance serves: its generated id, and its database's name (for messages). */
export interface CatalogIdentity {
  id: string
  database: string
}

export const OBJECT_KINDS = ['tenant', 'template', 'spare'] as const
export type ObjectKind = typeof OBJECT_KINDS[number]

export interface Mark {
  catalogId: string
  catalogDatabase: string
  kind: ObjectKind
  /** Of a template or a spare: the newest migration it holds, set once it is complete. */
  detail?: string
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const NAME = /^[a-z_][a-z0-9_]{0,62}$/
const DETAIL = /^[a-z0-9_.-]{1,120}$/
/** What a comment may hold: COMMENT takes no bind parameter, so the text is limited to a safe alphabet. */
const SAFE_COMMENT = /^[a-z0-9_:.-]{1,250}$/

/** The comment that marks an object as made by Silo for `identity`. */
export function markText (identity: CatalogIdentity, kind: ObjectKind, detail?: string): string {
  if (!UUID.test(identity.id)) throw new TypeError('Invalid catalog id')
  if (!NAME.test(identity.database)) throw new TypeError('Invalid catalog database name')
  if (detail !== undefined && !DETAIL.test(detail)) throw new TypeError('Invalid mark detail')
  return assertSafeComment(['silo', identity.id, identity.database, kind, ...(detail === undefined ? [] : [detail])].join(':'))
}

/** The mark a comment carries, or null when it carries none (any other comment, or none). */
export function parseMark (comment: string | null | undefined): Mark | null {
  if (comment == null) return null
  const parts = comment.split(':')
  if (parts.length < 4 || parts.length > 5 || parts[0] !== 'silo') return null
  const [, catalogId = '', catalogDatabase = '', kind = '', detail] = parts
  if (!UUID.test(catalogId) || !NAME.test(catalogDatabase) || !(OBJECT_KINDS as readonly string[]).includes(kind)) return null
  if (detail !== undefined && !DETAIL.test(detail)) return null
  return { catalogId, catalogDatabase, kind: kind as ObjectKind, ...(detail === undefined ? {} : { detail }) }
}

/**
 * Whose a database is: its owner's mark, else its own comment's. Silo creates every tenant and
 * spare database owned by a role it marked in the same transaction as the role itself, while
 * CREATE DATABASE cannot share a transaction with its COMMENT: the owner's mark covers the
 * moment in between. The owner's mark also wins over the database's own comment, which the
 * owner (a tenant's role) may rewrite, while it can neither comment on its role nor give its
 * database away: a tenant cannot make its database another catalog's, or nobody's. A template,
 * owned by the admin role, is known by its own comment. A mark's detail (a template's or spare's
 * version) is always read from the database's own comment.
 */
export function databaseMark (database: { comment: string | null, ownerComment: string | null }): Mark | null {
  return parseMark(database.ownerComment) ?? parseMark(database.comment)
}

export function assertSafeComment (comment: string): string {
  if (!SAFE_COMMENT.test(comment)) throw new TypeError('Unsafe object comment')
  return comment
}
