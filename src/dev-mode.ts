import type { Config } from './config.js'
import { loadEmbeddedPostgres, startEmbeddedPostgres, type EmbeddedPostgres } from './db/embedded-postgres.js'
import { loadDevSecrets } from './dev-secrets.js'

export interface ResolvedDatabase {
  config: Config
  /** Set in embedded dev mode; stop it when done (a no-op when another process runs it). */
  embedded: EmbeddedPostgres | undefined
}

/**
 * With DATABASE_URL, the config as it is. Without it (embedded dev mode), the embedded
 * PostgreSQL of DATA_DIR is started or joined, and the generated dev secrets fill in
 * SECRET_KEY and ADMIN_TOKEN where they are not set. Used by the server and the CLI alike.
 */
export async function resolveDatabase (config: Config, log?: (message: string) => void): Promise<ResolvedDatabase> {
  if (config.databaseUrl !== undefined) return { config, embedded: undefined }
  // Before anything is written under DATA_DIR: without the optional package, only a message.
  await loadEmbeddedPostgres()
  const secrets = await loadDevSecrets(config.dataDir)
  const embedded = await startEmbeddedPostgres({
    dataDir: config.dataDir,
    password: secrets.postgresPassword,
    ...(log === undefined ? {} : { log })
  })
  return {
    config: {
      ...config,
      databaseUrl: embedded.url,
      adminToken: config.adminToken ?? secrets.adminToken,
      secretKey: config.secretKey ?? secrets.secretKey
    },
    embedded
  }
}
