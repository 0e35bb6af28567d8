/**
 * Names of databases and roles that Silo builds from input. They are checked against this
 * pattern and then passed to knex as identifier bindings (`??`), never spliced into SQL.
 */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/

export function assertIdentifier (name: string, what = 'identifier'): string {
  if (!IDENTIFIER.test(name)) throw new TypeError(`Invalid ${what}: must match ${String(IDENTIFIER)}`)
  return name
}
