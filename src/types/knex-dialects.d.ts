declare module 'knex/lib/dialects/postgres/index.js' {
  import { Knex } from 'knex'

  class PgClient extends Knex.Client {
    /** Runs one compiled query on a raw connection (knex internal, not in knex's typings). */
    _query (connection: unknown, obj: unknown): Promise<unknown>
  }
  export default PgClient
}
