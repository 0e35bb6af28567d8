// A mover in a process of its own, for tests that kill one at a given step, as a crash would:
// opens the core from its environment (as the CLI does), moves MOVE_SLUG to MOVE_TO, and before
// step MOVE_HANG_AT prints `at <step>` and waits there until it is killed.
import { loadConfig } from '../../src/config.js'
import { TenantMover } from '../../src/lifecycle/tenant-mover.js'
import { openSilo } from '../../src/silo.js'

const { MOVE_SLUG: slug = '', MOVE_TO: to = '', MOVE_HANG_AT: hangAt } = process.env
const config = loadConfig(process.env as Record<string, string>, { env: false, dotenv: false })
const silo = await openSilo(config, { listen: false, spares: false })
const mover = new TenantMover({
  catalog: silo.catalog,
  servers: silo.servers,
  migrator: silo.migrator,
  holdMs: config.moveHoldMs,
  beforeStep: async (step) => {
    if (step !== hangAt) return
    process.stdout.write(`at ${step}\n`)
    await new Promise(() => { setInterval(() => {}, 60000) })
  }
})
await mover.move(slug, { to })
process.stdout.write('moved\n')
await silo.close()
