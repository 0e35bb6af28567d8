import pg from 'pg'
import type { PgConnection } from '../src/db/knex-config.js'
import { median } from './load.js'

export interface StartRate {
  /** Connections opened (and queried, when asked) and closed per second (each a backend the postmaster started). */
  perS: number
  /** Median time of one connect, ms. */
  connectMs: number
  failed: number
}

/**
 * How many new backends a server starts per second: `clients` loops at once, each opening a
 * connection (to the next of `targets`, in turn), running `query` on it when one is given,
 * closing it, and opening the next, for `durationS`. What bounds requests for tenants with no
 * open connection, whatever the pooling.
 */
export async function backendStartRate (
  targets: readonly PgConnection[],
  options: { clients: number, durationS: number, query?: { text: string, values: unknown[] } }
): Promise<StartRate> {
  if (targets.length === 0) throw new Error('no database to connect to')
  const deadline = performance.now() + options.durationS * 1000
  const connectMs: number[] = []
  let next = 0
  let done = 0
  let failed = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: options.clients }, async () => {
    while (performance.now() < deadline) {
      const target = targets[next++ % targets.length] as PgConnection
      const client = new pg.Client({ ...target, application_name: 'silo-bench-start' })
      const c0 = performance.now()
      try {
        await client.connect()
        connectMs.push(performance.now() - c0)
        if (options.query !== undefined) await client.query(options.query)
        done++
      } catch {
        failed++
      } finally {
        await client.end().catch(() => {})
      }
    }
  }))
  const seconds = (performance.now() - t0) / 1000
  return { perS: done / seconds, connectMs: median(connectMs), failed }
}
