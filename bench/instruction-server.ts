/**
 * The instruction rows' servers, each run as a process of its own under callgrind: `valgrind
 * --tool=callgrind ... node --import tsx bench/instruction-server.ts '<InstructionServerOptions
 * JSON>'`, with an IPC channel (worker-process.ts). `silo` serves `GET /articles/:id` as Silo over
 * the bench's tenants; `silo-miss` the same with a few pools for many tenants, so every request
 * opens its tenant's pool and connection and pushes another out; `single` as the single-database
 * app; `connect` serves nothing and, told `{ type: 'loop', count }`, connects to `count` tenant
 * databases in turn as their own roles, runs the route's query and disconnects (a raw `pg`
 * client: what any design pays for a miss). Sends `started` (with its URL) once ready, and on
 * `stop` closes and sends its result.
 */
import pg from 'pg'
import { siloApp, singleDatabaseApp, type Listening } from './apps.js'
import { benchSilo, type BenchEnv } from './fixtures.js'
import { slugOf } from './hosts.js'
import { tenantConnection } from '../src/catalog/tenant-connection.js'
import type { PgConnection } from '../src/db/knex-config.js'
import type { Silo } from '../src/silo.js'

export interface InstructionServerOptions {
  side: 'silo' | 'silo-miss' | 'single' | 'connect'
  env: BenchEnv
  /** The single-database app's database. */
  single: PgConnection
  /** Tenants `connect` goes through in turn; `silo-miss` keeps a pool for a tenth of them. */
  tenants: number
}

export type InstructionServerMessage = { type: 'started', url: string } | { type: 'looped' } | { type: 'result' }

const options = JSON.parse(process.argv[2] ?? '{}') as InstructionServerOptions
let silo: Silo | undefined
let app: Listening | undefined
const connections: PgConnection[] = []
if (options.side === 'silo' || options.side === 'silo-miss') {
  silo = await benchSilo(options.env, options.side === 'silo' ? {} : { TENANT_POOLS_MAX: Math.max(1, Math.floor(options.tenants / 10)) })
  app = await siloApp(silo)
} else if (options.side === 'single') {
  app = await singleDatabaseApp(options.single, 10)
} else {
  // Only the tenants' connection details: no Silo keeps running beside the loop.
  const reader = await benchSilo(options.env)
  const records = await reader.catalog.tenantsBySlugs(Array.from({ length: options.tenants }, (_, i) => slugOf(i)))
  await reader.close()
  connections.push(...[...records.values()].map((tenant) => tenantConnection(tenant, 'silo-bench-connect')))
}

/** `count` raw connects, each with the route's query, to the tenants in turn. */
async function loop (count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const client = new pg.Client(connections[i % connections.length])
    await client.connect()
    await client.query('select * from articles where id = $1', [1])
    await client.end()
  }
}

process.on('message', (message: 'stop' | { type: 'loop', count: number }) => {
  if (message === 'stop') {
    void Promise.resolve(app?.close()).then(async () => { await silo?.close() }).finally(() => {
      process.send?.({ type: 'result' } satisfies InstructionServerMessage, () => { process.exit(0) })
    })
    return
  }
  void loop(message.count).then(() => { process.send?.({ type: 'looped' } satisfies InstructionServerMessage) })
})
process.send?.({ type: 'started', url: app?.url ?? '' } satisfies InstructionServerMessage)
