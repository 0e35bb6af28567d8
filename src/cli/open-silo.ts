import type { CliConfig } from '../config.js'
import type { Silo } from '../silo.js'

/**
 * Opens the tenancy core for one command (DATABASE_URL, or the embedded dev server of
 * DATA_DIR), runs it, and always closes everything it opened, so the process can exit.
 */
export async function withSilo<T> (fn: (silo: Silo, config: CliConfig) => Promise<T>): Promise<T> {
  // Loaded here, not at the top: `--help` and refused command lines never pay for the core
  // (knex, pg, the config schema), and answer in the time node starts.
  const [{ loadConfig }, { resolveDatabase }, { openSilo }] = await Promise.all([import('../config.js'), import('../dev-mode.js'), import('../silo.js')])
  const { config, embedded } = await resolveDatabase(loadConfig())
  try {
    const silo = await openSilo(config, { listen: false, spares: false })
    try {
      return await fn(silo, config)
    } finally {
      await silo.close()
    }
  } finally {
    await embedded?.stop()
  }
}
