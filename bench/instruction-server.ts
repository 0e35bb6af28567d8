/**
 * The `hot instructions` row's server, run as a process of its own under callgrind: `valgrind
 * --tool=callgrind ... node --import tsx bench/instruction-server.ts '<InstructionServerOptions
 * JSON>'`, with an IPC channel (worker-process.ts). Serves `GET /articles/:id` as Silo over the
 * bench's tenants, or as the single-database app; sends `started` with its URL once listening,
 * and on `stop` closes and sends its result.
 */
import { siloApp, singleDatabaseApp, type Listening } from './apps.js'
import { benchSilo, type BenchEnv } from './fixtures.js'
import type { PgConnection } from '../src/db/knex-config.js'
import type { Silo } from '../src/silo.js'

export interface InstructionServerOptions {
  side: 'silo' | 'single'
  env: BenchEnv
  /** The single-database app's database. */
  single: PgConnection
}

export type InstructionServerMessage = { type: 'started', url: string } | { type: 'result' }

const options = JSON.parse(process.argv[2] ?? '{}') as InstructionServerOptions
let silo: Silo | undefined
let app: Listening
if (options.side === 'silo') {
  silo = await benchSilo(options.env)
  app = await siloApp(silo)
} else {
  app = await singleDatabaseApp(options.single, 10)
}
process.on('message', (message) => {
  if (message !== 'stop') return
  void app.close().then(async () => { await silo?.close() }).finally(() => {
    process.send?.({ type: 'result' } satisfies InstructionServerMessage, () => { process.exit(0) })
  })
})
process.send?.({ type: 'started', url: app.url } satisfies InstructionServerMessage)
