import { AsyncLocalStorage } from 'node:async_hooks'
import type { Knex } from 'knex'

export type LockMode = 'try' | 'shared' | 'exclusive'

/**
 * The catalog session that holds the advisory locks of one operation, and of the operations it
 * runs inside itself (a create clones the template under the tenant's lock; a spare is cloned
 * under its own lock).
 */
interface LockSession {
  readonly connection: unknown
  /** False once the operation that opened it is done: later inner locks open a session of their own. */
  open: boolean
  /** Inner locks being held; the session is given back only once they are let go. */
  inner: number
  wake: (() => void) | undefined
}

/**
 * Catalog advisory locks held in sessions of a pool of their own (`pool`), which runs nothing
 * else. An operation takes one session for its whole duration and runs its queries beside it, on
 * the main pool; a lock taken inside a locked operation (found through AsyncLocalStorage) reuses
 * that operation's session. So each operation needs one lock connection whatever its depth, and a
 * full lock pool makes operations wait their turn but never deadlocks them. Locks are session
 * locks, so an inner one is let go as soon as its work is done; a process that dies releases its
 * locks with its connections. Inner locks of one operation are taken one after another (a
 * session runs one statement at a time).
 */
export class AdvisoryLocks {
  readonly #pool: Knex
  readonly #session = new AsyncLocalStorage<LockSession>()
  /** Operations holding a session now; at 0 the AsyncLocalStorage is disabled (see `run`). */
  #active = 0

  constructor (pool: Knex) {
    this.#pool = pool
  }

  /** `fn` under the advisory lock `key`; `try` gives up at once (undefined, `fn` not run) when another session holds it. */
  async run<T> (key: string, mode: LockMode, fn: () => Promise<T>): Promise<T | undefined> {
    const current = this.#session.getStore()
    if (current?.open === true) return await this.#inner(current, key, mode, fn)
    const connection = await this.#pool.client.acquireConnection() as unknown
    const session: LockSession = { connection, open: true, inner: 0, wake: undefined }
    let clean = false
    this.#active++
    try {
      return await this.#session.run(session, async () => {
        if (!await this.#lock(session, key, mode)) return undefined
        return await fn()
      })
    } finally {
      session.open = false
      while (session.inner > 0) await new Promise<void>((resolve) => { session.wake = resolve })
      try {
        // Session locks outlive transactions: every lock of the session goes before the
        // connection goes back to the pool, or the connection goes.
        await this.#pool.raw('select pg_advisory_unlock_all()').connection(connection)
        clean = true
      } finally {
        if (!clean) (connection as { __knex__disposed?: unknown }).__knex__disposed = new Error('advisory locks could not be released')
        // Node 20's AsyncLocalStorage turns on promise hooks with its first run, for every
        // promise of the process from then on: on a serving instance, the request path paid
        // for them after the first create (a promise-heavy loop ran at half speed). With no
        // operation locked, nothing needs the store: disabling it turns the hooks off (the next
        // run turns them on again), and a continuation of a finished operation finds either no
        // session or its closed one, which it treats alike.
        if (--this.#active === 0) this.#session.disable()
        await this.#pool.client.releaseConnection(connection)
      }
    }
  }

  /** Runs `fn` outside any operation's lock session: its locks open sessions of their own. */
  outside<T> (fn: () => T): T {
    return this.#session.exit(fn)
  }

  /** An inner lock on the operation's session, let go as soon as `fn` is done. */
  async #inner<T> (session: LockSession, key: string, mode: LockMode, fn: () => Promise<T>): Promise<T | undefined> {
    session.inner++
    try {
      if (!await this.#lock(session, key, mode)) return undefined
      try {
        return await fn()
      } finally {
        await this.#pool.raw(mode === 'shared' ? 'select pg_advisory_unlock_shared(hashtextextended(?, 0))' : 'select pg_advisory_unlock(hashtextextended(?, 0))', [key])
          .connection(session.connection)
      }
    } finally {
      session.inner--
      if (session.inner === 0) session.wake?.()
    }
  }

  /** Takes `key` on the session; false only when `try` found it held by another session. */
  async #lock (session: LockSession, key: string, mode: LockMode): Promise<boolean> {
    const sql = mode === 'try'
      ? 'select pg_try_advisory_lock(hashtextextended(?, 0)) as locked'
      : mode === 'shared' ? 'select pg_advisory_lock_shared(hashtextextended(?, 0)), true as locked' : 'select pg_advisory_lock(hashtextextended(?, 0)), true as locked'
    const { rows } = await this.#pool.raw<{ rows: Array<{ locked: boolean }> }>(sql, [key]).connection(session.connection)
    return rows[0]?.locked === true
  }
}
