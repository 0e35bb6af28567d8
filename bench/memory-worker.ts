/**
 * The `memory` row's measurement, run as a process of its own (`node --expose-gc
 * memory-worker.js '<{ env, tenants }>'`, worker-process.ts): its RSS then holds Silo and its
 * cached tenants, not what the bench's earlier rows grew the bench's process to (measured there,
 * RSS per tenant came out below zero as that process gave memory back). Sends `started` with the
 * figures; on `stop`, `result`, and exits.
 */
import { setTimeout as pause } from 'node:timers/promises'
import { siloApp } from './apps.js'
import { benchSilo, type BenchEnv } from './fixtures.js'
import { hostOf } from './hosts.js'

export type MemoryWorkerMessage = { type: 'started', figures: MemoryFigures } | { type: 'result' }

export interface MemoryFigures {
  /** The idle cached tenants measured (half the bench's, see idleMemory). */
  tenants: number
  heapPerTenantKb: number
  rssPerTenantKb: number
  pools: number
  connections: number
  gc: boolean
}

/**
 * Memory per cached idle tenant: the pools of half the tenants cached, their connections closed by
 * the idle timeout. The other half is cached and evicted first, in the same instance: what the
 * first pools cost once (compiled code, the allocators' growth over as many connects) is then in
 * the figure before, and the difference is what the measured tenants keep. From a cold start
 * instead (2026-12-08, 500 tenants, a fresh process each): 8.6 KB of heap and 11.1 of RSS a tenant,
 * against 5.9 and 4.1 with the first cycle.
 */
async function idleMemory (env: BenchEnv, tenants: number): Promise<MemoryFigures> {
  const gc = (globalThis as { gc?: () => void }).gc
  const silo = await benchSilo(env, { TENANT_POOLS_MAX: tenants + 10, TENANT_IDLE_TIMEOUT_MS: 100, CONNECTION_BUDGET: 40 })
  const app = await siloApp(silo)
  const settle = async (): Promise<{ heap: number, rss: number }> => {
    await pause(2500)
    gc?.()
    gc?.()
    const usage = process.memoryUsage()
    return { heap: usage.heapUsed, rss: usage.rss }
  }
  const cache = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i++) await app.app.inject({ url: '/articles/1', headers: { host: hostOf(i) } })
  }
  const measured = Math.floor(tenants / 2)
  try {
    await cache(measured, tenants)
    for (const tenantId of silo.pools.keys()) silo.pools.evict(tenantId)
    const before = await settle()
    await cache(0, measured)
    const after = await settle()
    const stats = silo.pools.stats()
    return {
      tenants: measured,
      heapPerTenantKb: (after.heap - before.heap) / measured / 1024,
      rssPerTenantKb: (after.rss - before.rss) / measured / 1024,
      pools: stats.pools,
      connections: stats.connections.free + stats.connections.used,
      gc: gc !== undefined
    }
  } finally {
    await app.close()
    await silo.close()
  }
}

const options = JSON.parse(process.argv[2] ?? '{}') as { env: BenchEnv, tenants: number }
const figures = await idleMemory(options.env, options.tenants)
process.send?.({ type: 'started', figures } satisfies MemoryWorkerMessage)
process.on('message', (message) => {
  if (message === 'stop') process.send?.({ type: 'result' } satisfies MemoryWorkerMessage, () => { process.exit(0) })
})
