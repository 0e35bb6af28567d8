import { assertIdentifier } from './identifiers.js'
import { assertSafeComment } from './object-marks.js'

/**
 * The statements that let only `owner` connect to `database` (PostgreSQL lets PUBLIC connect to
 * a new database) and, with `mark`, comment it: one round trip, one transaction, run by the admin
 * on any database of the server (a template clone runs them inside the new database, beside the
 * hand-over of its objects). Identifiers are checked and bound with `??`; the comment is limited
 * to a safe alphabet first, as COMMENT takes no bind parameter.
 */
export function ownerOnlyAccess (database: string, owner: string, mark?: string): { sql: string, bindings: string[] } {
  assertIdentifier(database, 'database name')
  assertIdentifier(owner, 'role name')
  const comment = mark === undefined ? '' : `; COMMENT ON DATABASE ?? IS '${assertSafeComment(mark)}'`
  return {
    sql: `REVOKE ALL ON DATABASE ?? FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE ?? TO ??${comment}`,
    bindings: [database, database, owner, ...(mark === undefined ? [] : [database])]
  }
}
