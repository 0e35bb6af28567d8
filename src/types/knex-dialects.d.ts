declare module 'knex/lib/dialects/postgres/index.js' {
  import { Knex } from 'knex'

  class PgClient extends Knex.Client {
    /** Runs one compiled query on a raw connection (knex internal, not in knex's typings). */
    _query (connection: unknown, obj: unknown): Promise<unknown>
    /** The driver module, read by every new client (knex internal: `require('pg')`). */
    _driver (): unknown
  }
  export default PgClient
}
