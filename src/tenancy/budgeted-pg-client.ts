import type { Knex } from 'knex'
import PgClient from 'knex/lib/dialects/postgres/index.js'
import type { ConnectionBudget } from './connection-budget.js'
import { connectionLost } from './database-errors.js'

/** Told of every connection a pool opens, or fails to; `tenant` is what the pool was labelled with. */
export interface ConnectionObserver {
  opened: (tenant: string, durationMs: number) => void
  failed: (tenant: string, error: Error) => void
}

export interface BudgetedClientOptions {
  budget: ConnectionBudget
  /** Longest wait for a budget slot before TENANT_BUSY. */
  waitMs: number
  /** How long a pool that already has connections waits for one of its own before asking for room. */
  graceMs: () => number
  observer: ConnectionObserver
}

/** A knex client of this class: label it with its tenant right after `knex()` creates it. */
export interface BudgetedClient {
  tenant: string
}

/** The parts of knex's tarn pool this client reads. */
interface TarnPool {
  numUsed: () => number
  numFree: () => number
  numPendingAcquires: () => number
  on: (event: 'acquireSuccess', listener: () => void) => void
  removeListener: (event: 'acquireSuccess', listener: () => void) => void
}

/** A connection given up while waiting for a budget slot: the request that wanted it was served by another. */
class ConnectionNotNeeded extends Error {
  constructor () {
    super('connection no longer needed')
    this.name = 'ConnectionNotNeeded'
  }
}

/**
 * Knex's PostgreSQL client, made to count every connection against the instance's budget: a
 * slot is taken before the connection is opened and given back when the pool closes it,
 * whatever the reason. This wraps the exact two calls the pool makes (create and destroy), so
 * no connection can bypass the count.
 *
 * When the budget is full, a tenant's first connection waits for a slot and asks for room at
 * once. A further connection of a tenant that has some waits patiently instead, and is given
 * up as soon as no request of that pool waits any more (one of its own connections came free):
 * under a tight budget, a busy moment no longer costs a connection open plus another tenant's
 * pool.
 */
export function budgetedPgClient (options: BudgetedClientOptions): typeof Knex.Client {
  const { budget, waitMs, graceMs, observer } = options
  // One class for every pool of a cache: a class per pool would cost each cached tenant memory.
  return class BudgetedPgClient extends PgClient implements BudgetedClient {
    tenant = ''

    override async acquireRawConnection (): Promise<unknown> {
      if (!budget.tryTake()) await this.#waitForSlot()
      const started = performance.now()
      try {
        const connection = await super.acquireRawConnection()
        observer.opened(this.tenant, performance.now() - started)
        return connection
      } catch (error) {
        budget.give()
        observer.failed(this.tenant, error as Error)
        throw error
      }
    }

    async #waitForSlot (): Promise<void> {
      const pool = (this as unknown as { pool?: TarnPool }).pool
      if (pool === undefined || pool.numUsed() + pool.numFree() === 0) {
        await budget.take(waitMs)
        return
      }
      const wanted = new AbortController()
      const check = (): void => {
        if (pool.numPendingAcquires() === 0) wanted.abort(new ConnectionNotNeeded())
      }
      pool.on('acquireSuccess', check)
      try {
        await budget.take(waitMs, { signal: wanted.signal, pressureAfterMs: graceMs() })
      } finally {
        pool.removeListener('acquireSuccess', check)
      }
    }

    /**
     * The pool hands a create's failure to the first request waiting, if any: a request that
     * arrived between a withdrawal and that hand-over gets a ConnectionNotNeeded it has no use
     * for, and simply asks again.
     */
    override async acquireConnection (): Promise<unknown> {
      for (;;) {
        try {
          return await super.acquireConnection()
        } catch (error) {
          if (!(error instanceof ConnectionNotNeeded)) throw error
        }
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
