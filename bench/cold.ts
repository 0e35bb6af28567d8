import { setTimeout as pause } from 'node:timers/promises'
import pg from 'pg'
import type { Silo } from '../src/silo.js'
import { siloApp } from './apps.js'
import { benchSilo, type BenchEnv } from './fixtures.js'
import { hostOf, slugOf } from './hosts.js'
import { median } from './load.js'
import { benchScript } from './bench-files.js'
import type { MemoryWorkerMessage } from './memory-worker.js'
import type { RowFigures } from './scenarios.js'
import { startWorker } from './worker-process.js'

export interface ColdFigures {
  coldMs: number
  rawMs: number
  warmMs: number
  /** The median of each tenant's cold request less its own raw connect + query, taken next to each other. */
  pairedOverheadMs: number
}

/**
 * The first request to a tenant no cache of a fresh instance has seen (catalog look-up, pool,
 * connection, query), against a raw `pg` connect + the same query to the same database, in
 * alternating order with a pause after each (a closing backend must not slow the next one).
 */
export async function coldStart (env: BenchEnv, setup: Silo, samples: number): Promise<ColdFigures> {
  const silo = await benchSilo(env, { TENANT_POOLS_MAX: 1000 })
  const app = await siloApp(silo)
  const cold: number[] = []
  const raw: number[] = []
  const warm: number[] = []
  try {
    const records = await setup.catalog.tenantsBySlugs(Array.from({ length: samples }, (_, i) => slugOf(i)))
    for (let i = 0; i < samples; i++) {
      const tenant = records.get(slugOf(i))
      if (tenant === undefined) continue
      const viaRaw = async (): Promise<void> => {
        const t0 = performance.now()
        const client = new pg.Client({ ...setup.server, database: tenant.database.name, user: tenant.database.user, password: tenant.database.password })
        await client.connect()
        await client.query('select * from articles where id = $1', [1])
        raw.push(performance.now() - t0)
        await client.end()
        await pause(30)
      }
      const viaSilo = async (): Promise<void> => {
        const t0 = performance.now()
        const res = await app.app.inject({ url: '/articles/1', headers: { host: hostOf(i) } })
        cold.push(performance.now() - t0)
        if (res.statusCode !== 200) throw new Error(`cold request failed: ${res.statusCode} ${res.body}`)
        const t1 = performance.now()
        await app.app.inject({ url: '/articles/1', headers: { host: hostOf(i) } })
        warm.push(performance.now() - t1)
        await pause(30)
      }
      if (i % 2 === 0) {
        await viaRaw()
        await viaSilo()
      } else {
        await viaSilo()
        await viaRaw()
      }
    }
  } finally {
    await app.close()
    await silo.close()
  }
  // Each tenant's two samples were taken back to back: the difference of each pair leaves out the
  // server's speed from one moment to the next, which the difference of the two medians keeps.
  const overheads = cold.map((ms, i) => ms - (raw[i] ?? NaN)).filter((ms) => !Number.isNaN(ms))
  return { coldMs: median(cold), rawMs: median(raw), warmMs: median(warm), pairedOverheadMs: median(overheads) }
}

/** The `cold` row: the median over `samples` tenants of a cold request less its raw connect + query. */
export async function coldRow (env: BenchEnv, setup: Silo, samples: number): Promise<RowFigures> {
  const cold = await coldStart(env, setup, samples)
  const overhead = cold.pairedOverheadMs
  return { figure: 'ms over raw pg connect+query', value: overhead, target: '<= 2 ms', met: overhead <= 2, detail: `median of each tenant's cold request less its raw connect + query taken next to it, over ${samples} tenants; median cold ${cold.coldMs.toFixed(2)} ms, raw ${cold.rawMs.toFixed(2)} ms (difference of the medians ${(cold.coldMs - cold.rawMs).toFixed(2)} ms), warm ${cold.warmMs.toFixed(2)} ms` }
}

/** The `memory` row: heap and RSS per idle cached tenant, half of `tenants` measured, in a process of its own (memory-worker.ts). */
export async function memoryRow (env: BenchEnv, tenants: number): Promise<RowFigures> {
  const worker = startWorker<MemoryWorkerMessage & { type: 'result' }, MemoryWorkerMessage & { type: 'started' }>(benchScript('memory-worker'), { env, tenants }, 'memory worker', [], ['--expose-gc'])
  const { figures: memory } = await worker.started
  await worker.stop()
  return { figure: 'KB heap per idle cached tenant', value: memory.heapPerTenantKb, target: '<= 30 KB (heap and RSS)', met: memory.heapPerTenantKb <= 30 && memory.rssPerTenantKb <= 30, detail: `RSS ${memory.rssPerTenantKb.toFixed(1)} KB per tenant; ${memory.tenants} tenants cached after as many cached and evicted (${memory.pools} pools cached, ${memory.connections} connections open)${memory.gc ? '' : '; no --expose-gc'}` }
}
