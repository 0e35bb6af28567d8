import { Agent, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { FastifyInstance } from 'fastify'
import type { Knex } from 'knex'
import type { Silo } from '../../src/silo.js'
import type { Teardown } from './silo.js'
import { sleep } from './wait.js'

/**
 * Size of a soak run. `SOAK_SCALE` multiplies the work of every soak test: unset (or 1) is the
 * CI size, `SOAK_SCALE=10` the full size. Anything else positive works too (0.5 for a quick look).
 */
export function soakScale (): number {
  const raw = process.env.SOAK_SCALE
  if (raw === undefined || raw === '') return 1
  const scale = Number(raw)
  if (!Number.isFinite(scale) || scale <= 0) throw new Error(`SOAK_SCALE must be a positive number, not ${JSON.stringify(raw)}`)
  return scale
}

/** Runs `fn` on a tenant's own database, logged in as its role, past the HTTP layer and the pool cache. */
export async function withTenantDatabase<T> (silo: Silo, slug: string, fn: (db: Knex) => Promise<T>): Promise<T> {
  const tenant = await silo.catalog.tenantBySlug(slug)
  if (tenant === null) throw new Error(`no tenant ${slug}`)
  return await silo.migrator.withDatabase(tenant, fn)
}

/** Provisions `slugs` a few at a time (template clones are cheap, but CREATE DATABASE serializes). */
export async function createTenants (silo: Silo, slugs: string[], concurrency = 4): Promise<void> {
  const queue = [...slugs]
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let slug = queue.shift(); slug !== undefined; slug = queue.shift()) {
      await silo.provisioner.create({ slug, domains: [`${slug}.test`], seed: false })
    }
  }))
}

export interface HttpResponse {
  status: number
  /** Parsed JSON body, or undefined when there is none. */
  body: unknown
}

export interface HttpClient {
  /** Never rejects for an HTTP status; rejects only when the exchange itself fails (reset, refused). */
  send: (method: string, path: string, host: string, payload?: unknown) => Promise<HttpResponse>
}

/**
 * Makes `app` listen on 127.0.0.1 (port 0) and returns a keep-alive HTTP client for it. The agent
 * is destroyed in teardown; the app itself is closed by the helper that built it.
 */
export async function listen (t: Teardown, app: FastifyInstance, sockets: number): Promise<HttpClient> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const agent = new Agent({ keepAlive: true, maxSockets: sockets })
  t.teardown(() => { agent.destroy() })
  return {
    send: async (method, path, host, payload) => await new Promise<HttpResponse>((resolve, reject) => {
      const data = payload === undefined ? undefined : JSON.stringify(payload)
      const req = request({
        agent,
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { host, ...(data === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }) }
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let body: unknown
          try {
            body = text === '' ? undefined : JSON.parse(text)
          } catch {
            body = text
          }
          resolve({ status: res.statusCode ?? 0, body })
        })
      })
      req.on('error', reject)
      req.end(data)
    })
  }
}

let collect: (() => void) | undefined

/**
 * Heap in use after full garbage collections, in bytes. The test runner's node flags are shared by
 * every file, so `gc` is exposed here at run time instead of with --expose-gc.
 */
export async function settledHeapUsed (): Promise<number> {
  if (collect === undefined) {
    setFlagsFromString('--expose-gc')
    collect = runInNewContext('gc') as () => void
  }
  // Let pending callbacks (sockets, timers, promise chains of finished requests) run out first.
  for (let i = 0; i < 3; i++) {
    await sleep(20)
    collect()
  }
  return process.memoryUsage().heapUsed
}

export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(2)} MB`

/** The p-th percentile (nearest rank) of `values`; NaN when there are none. */
export function percentile (values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN
}

export const median = (values: number[]): number => percentile(values, 50)
