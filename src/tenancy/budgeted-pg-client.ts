import type { Knex } from 'knex'
import type { LimitFunction } from 'p-limit'
import PgClient from 'knex/lib/dialects/postgres/index.js'
import pg from 'pg'
import type { ConnectionBudget } from './connection-budget.js'
import { connectionLost } from './database-errors.js'

/** Told of every connection a pool opens, or fails to; `tenant` is what the pool was labelled with. */
export interface ConnectionObserver {
  opened: (tenant: string, durationMs: number) => void
  failed: (tenant: string, error: Error) => void
}

export interface BudgetedClientOptions {
  budget: ConnectionBudget
  /** The server's connections being opened at once: an open waits its turn here before it takes a budget slot. */
  gate: LimitFunction
  /** Longest wait for a budget slot before TENANT_BUSY. */
  waitMs: number
  observer: ConnectionObserver
}

/** A knex client of this class: label it with its tenant right after `knex()` creates it. */
export interface BudgetedClient {
  tenant: string
}

/** The parts of knex's tarn pool this client reads. */
interface TarnPool {
  destroyed?: boolean
  on: (event: 'poolDestroyRequest', listener: () => void) => void
  removeListener: (event: 'poolDestroyRequest', listener: () => void) => void
}

/**
 * Knex's PostgreSQL client, made to count every connection against the instance's budget: an
 * open first waits its turn among the server's opens (`gate`, holding no slot), then a
 * slot is taken before the connection is opened (waiting, and asking for room, when the budget
 * is full) and given back when the pool closes it, whatever the reason. This wraps the exact
 * two calls the pool makes (create and destroy), so no connection can bypass the count.
 */
export function budgetedPgClient (options: BudgetedClientOptions): typeof Knex.Client {
  const { budget, gate, waitMs, observer } = options
  // One class for every pool of a cache: a class per pool would cost each cached tenant memory.
  return class BudgetedPgClient extends PgClient implements BudgetedClient {
    tenant = ''

    /**
     * The driver, imported once. Knex's own `_driver` runs `require('pg')` for each new client, a
     * module lookup (file stats) every time a tenant's pool is made: about a twentieth of the
     * CPU a miss costs when tenants come and go (a pool made, connected, used and closed).
     */
    override _driver (): unknown {
      return pg
    }

    override async acquireRawConnection (): Promise<unknown> {
      return await gate(async () => {
        await this.#takeSlot()
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
      })
    }

    /**
     * A pool being closed (retired from the cache) waits for its pending opens before it closes
     * its idle connections: an open still queued for a budget slot would wait for slots that
     * those very connections hold. So the wait is given up as soon as the pool is closed.
     */
    async #takeSlot (): Promise<void> {
      const pool = (this as unknown as { pool?: TarnPool }).pool
      if (pool === undefined) {
        await budget.take(waitMs)
        return
      }
      if (pool.destroyed === true) throw new Error('the tenant pool was closed')
      // A free slot: taken at once, with nothing to give up (most opens).
      if (budget.tryTake()) return
      const closed = new AbortController()
      const abandon = (): void => { closed.abort(new Error('the tenant pool was closed')) }
      pool.on('poolDestroyRequest', abandon)
      try {
        await budget.take(waitMs, closed.signal)
      } finally {
        pool.removeListener('poolDestroyRequest', abandon)
      }
    }

    /**
     * A query whose error ended its session (a FATAL, an admin's pg_terminate_backend, a server
     * restart) leaves a dead connection; pg reports the socket's end only after the connection
     * went back to the pool, where the next request would pick it up and fail too. Marking it
     * disposed makes knex's pool validation drop it instead.
     */
    override _query (connection: unknown, obj: unknown): Promise<unknown> {
      // A handler on knex's promise, not an async wrapper around it: every query takes this path.
      return (super._query(connection, obj) as Promise<unknown>).catch((error: unknown) => {
        if (connectionLost(error)) (connection as { __knex__disposed?: unknown }).__knex__disposed = error
        throw error
      })
    }

    /**
     * Closes the connection as knex's own does (`end`), with pg's promise: knex wraps that call in
     * `util.promisify` on every close, a function made each time (every evicted pool's connection).
     */
    override async destroyRawConnection (connection: unknown): Promise<void> {
      try {
        await (connection as pg.Client).end()
      } finally {
        budget.give()
      }
    }
  }
}
