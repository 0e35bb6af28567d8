import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Silo } from '../../silo.js'
import { isSiloError, notFound } from '../../errors.js'
import { migrateFleet } from '../../lifecycle/fleet-migrator.js'
import { tenantNotFoundBySlug } from '../../lifecycle/provisioner.js'
import { SlugParams } from '../../schemas/admin.js'
import { ErrorBody } from '../../schemas/error.js'
import {
  FleetMigrationDetail, FleetMigrationList, FleetMigrationListQuery, FleetMigrationParams, FleetMigrationQuery, FleetMigrationView,
  TenantMigrationList, TenantMigrationView, fleetMigrationView, tenantMigrationView
} from '../../schemas/migrations.js'

/** What the migration routes use of the core, and the fleet's concurrency (MIGRATE_CONCURRENCY, as the CLI's default). */
export type AdminMigrationDeps = Pick<Silo, 'catalog' | 'migrator' | 'events' | 'fleetMigrations'> & { migrateConcurrency: number }

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody }
const security = [{ bearer: [] }]

/**
 * Tenant migrations over HTTP, as `tenants migrate` runs them: one tenant at once (its outcome in
 * the answer, a failure included: the request did what it was asked), or the fleet as a run that
 * goes on after the answer, one at a time in the deployment, read back by id. Both record what
 * the CLI records (migration_runs, fleet_migrations), so the CLI's runs are read here too.
 */
export const adminMigrationRoutes: FastifyPluginAsyncTypebox<AdminMigrationDeps> = async (app, { catalog, migrator, events, fleetMigrations, migrateConcurrency }) => {
  app.post('/tenants/:slug/migrate', {
    schema: {
      tags: ['admin'],
      operationId: 'migrateTenant',
      summary: 'Migrate one tenant to the newest schema now, as `tenants migrate <slug>` does; answers its outcome (status failed with its error when a migration failed)',
      security,
      params: SlugParams,
      response: { 200: TenantMigrationView, ...errors }
    }
  }, async (request) => {
    const { slug } = request.params
    if (await catalog.tenantBySlug(slug) === null) throw tenantNotFoundBySlug(slug)
    const runId = randomUUID()
    const [result] = await migrateFleet(catalog, migrator, [slug], { concurrency: 1, runId, events })
    if (result === undefined) throw new Error(`the migration of ${slug} gave no result`)
    // What the catalog recorded (its time); the result itself when it could not be recorded.
    const [recorded] = await catalog.runs.ofRun(runId, 1).catch(() => [])
    return tenantMigrationView(recorded ?? { ...result, runId, direction: 'latest' })
  })

  app.get('/tenants/:slug/migrations', {
    schema: {
      tags: ['admin'],
      operationId: 'listTenantMigrations',
      summary: 'The tenant\'s migration attempts, newest first (the last 20), from fleet runs and single migrations alike',
      security,
      params: SlugParams,
      response: { 200: TenantMigrationList, ...errors }
    }
  }, async (request) => {
    const { slug } = request.params
    const runs = await catalog.runs.list({ slug, limit: 20 })
    if (runs.length === 0 && await catalog.tenantBySlug(slug) === null) throw tenantNotFoundBySlug(slug)
    return { items: runs.map(tenantMigrationView) }
  })

  app.post('/migrations', {
    schema: {
      tags: ['admin'],
      operationId: 'startFleetMigration',
      summary: 'Start migrating every tenant to the newest schema (MIGRATE_CONCURRENCY at once on each server); answers at once, follow it at GET /migrations/:id. One runs at a time: 409 MIGRATION_RUNNING, with the running one\'s Location',
      security,
      response: { 202: FleetMigrationView, ...errors }
    }
  }, async (request, reply) => {
    try {
      const { run, done } = await fleetMigrations.start({ concurrency: migrateConcurrency, origin: 'api' })
      // Its end is in its record; a run that could not record it is logged here too.
      done.catch((error: unknown) => { request.log.warn({ err: error, migration: run.id }, 'fleet migration failed') })
      return await reply.code(202).header('location', `/migrations/${run.id}`).send(fleetMigrationView(run))
    } catch (error) {
      if (isSiloError(error) && error.code === 'MIGRATION_RUNNING') {
        const running = (await fleetMigrations.recent(1).catch(() => [])).find((run) => run.status === 'running')
        if (running !== undefined) void reply.header('location', `/migrations/${running.id}`)
      }
      throw error
    }
  })

  app.get('/migrations', {
    schema: {
      tags: ['admin'],
      operationId: 'listFleetMigrations',
      summary: 'Fleet migrations, newest first, from the CLI and the admin API alike',
      security,
      querystring: FleetMigrationListQuery,
      response: { 200: FleetMigrationList, ...errors }
    }
  }, async (request) => ({ items: (await fleetMigrations.recent(request.query.limit)).map(fleetMigrationView) }))

  app.get('/migrations/:id', {
    schema: {
      tags: ['admin'],
      operationId: 'getFleetMigration',
      summary: 'A fleet migration: its status, progress, tenant results (failures first) and, once it ended, its summary',
      security,
      params: FleetMigrationParams,
      querystring: FleetMigrationQuery,
      response: { 200: FleetMigrationDetail, ...errors }
    }
  }, async (request) => {
    const run = await fleetMigrations.get(request.params.id)
    if (run === null) throw notFound(`No fleet migration ${request.params.id}`)
    const results = await catalog.runs.ofRun(run.id, request.query.limit)
    return { ...fleetMigrationView(run), results: results.map(tenantMigrationView) }
  })
}
