import { loadConfig, type CliConfig } from '../config.js'
import { resolveDatabase } from '../dev-mode.js'
import { openSilo, type Silo } from '../silo.js'

/**
 * Opens the tenancy core for one command (DATABASE_URL, or the embedded dev server of
 * DATA_DIR), runs it, and always closes everything it opened, so the process can exit.
 */
export async function withSilo<T> (fn: (silo: Silo, config: CliConfig) => Promise<T>): Promise<T> {
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
