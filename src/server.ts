import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { loadConfig } from './config.js'
import { ensureDemoTenants } from './demo-tenants.js'
import { resolveDatabase } from './dev-mode.js'
import { createLogger } from './logger.js'
import { openSilo } from './silo.js'
import { assertAdminHostFree, devBanner, docsUrl } from './start-up.js'

/**
 * Stops accepting connections and waits for the requests in flight. Fastify closes the
 * connections that are idle when closing starts, but a kept-alive connection whose request was
 * still running goes idle only later, and Node would hold `close()` open until its keep-alive
 * timeout (72 s) ran out: the shutdown would hit close-with-grace's deadline and exit 1 with
 * every pool still open. Such connections are closed as soon as they go idle.
 */
async function closeHttp (app: FastifyInstance): Promise<void> {
  const reaper = setInterval(() => { app.server.closeIdleConnections() }, 50)
  try {
    await app.close()
  } finally {
    clearInterval(reaper)
  }
}

async function main (): Promise<void> {
  const initial = loadConfig()
  const logger = createLogger(initial.logLevel)
  const { config, embedded } = await resolveDatabase(initial, (message) => {
    logger.debug({ postgres: message.trim() }, 'embedded postgres')
  })

  const silo = await openSilo(config)
  try {
    await assertAdminHostFree(silo.catalog, config.adminHost)
  } catch (error) {
    await silo.close()
    await embedded?.stop()
    throw error
  }
  silo.events.on('catalog:feed', ({ connected, error }) => {
    if (connected) logger.info('catalog change feed reconnected')
    else logger.warn({ err: error }, 'catalog change feed lost; unknown hosts are looked up in the catalog until it is back')
  })
  silo.events.on('catalog:key', ({ keyId, held }) => {
    if (held) logger.info({ keyId }, 'tenant credentials are now under another key, which this instance holds')
    else logger.error({ keyId }, 'tenant credentials are now under a key this instance does not hold: restart it with the new SECRET_KEY (cached tenants are served until then, others get 503)')
  })
  silo.events.on('spares:failed', ({ error }) => {
    logger.warn({ err: error }, 'a spare tenant database could not be made or claimed; creates clone the template meanwhile')
  })
  if (embedded !== undefined && await ensureDemoTenants(silo)) logger.info('created demo tenants acme and globex')
  const app = await buildApp(silo, { config, logger })

  closeWithGrace({ delay: 10000 }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down')
    await closeHttp(app)
    await silo.close()
    await embedded?.stop()
  })

  const port = Number(new URL(await app.listen({ host: config.host, port: config.port })).port)
  // Never the token: this line goes wherever the logs go.
  app.log.info({ adminHost: config.adminHost, docs: docsUrl(config.adminHost, port) }, `admin API and docs on ${config.adminHost}: ${docsUrl(config.adminHost, port)}`)
  if (embedded !== undefined) process.stdout.write(devBanner(config, port) + '\n')
}

main().catch((error: unknown) => {
  process.stderr.write(`silo: ${(error as Error).message}\n`)
  process.exit(1)
})
