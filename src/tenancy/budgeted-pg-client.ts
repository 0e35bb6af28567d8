import type { Knex } from 'knex'
import PgClient from 'knex/lib/dialects/postgres/index.js'
import type { ConnectionBudget } from './connection-budget.js'
import { connectionLost } from './database-errors.js'

export interface ConnectionObserver {
  opened: (durationMs: number) => void
  failed: (error: Error) => void
}

/**
 * Knex's PostgreSQL client, made to count every connection against the instance's budget: a
 * slot is taken before the connection is opened (waiting if need be) and given back when
 * the pool closes it, whatever the reason. This wraps the exact two calls the pool makes
 * (create and destroy), so no connection can bypass the count.
 */
export function budgetedPgClient (budget: ConnectionBudget, waitMs: number, observer: ConnectionObserver): typeof Knex.Client {
  return class BudgetedPgClient extends PgClient {
    override async acquireRawConnection (): Promise<unknown> {
      await budget.take(waitMs)
      const started = performance.now()
      try {
        const connection = await super.acquireRawConnection()
        observer.opened(performance.now() - started)
        return connection
      } catch (error) {
        budget.give()
        observer.failed(error as Error)
        throw error
      }
    }

    /**
     * A query whose error ended its session (a FATAL, an admin's pg_terminate_backend, a server
     * restart) leaves a dead connection; pg reports the socket's end only after the connection
     * went back to the pool, where the next request would pick it up and fail too. Marking it
     * disposed makes knex's pool validation drop it instead.
     */
    override async _query (connection: unknown, obj: unknown): Promise<unknown> {
      try {
        return await super._query(connection, obj)
      } catch (error) {
        if (connectionLost(error)) (connection as { __knex__disposed?: unknown }).__knex__disposed = error
        throw error
      }
    }

    override async destroyRawConnection (connection: unknown): Promise<void> {
      try {
        await super.destroyRawConnection(connection)
      } finally {
        budget.give()
      }
    }
  }
}
