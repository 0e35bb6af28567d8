import { randomUUID } from 'node:crypto'
import knex, { type Knex } from 'knex'
import type { CoreConfig } from './config.js'
import { CatalogListener } from './catalog/catalog-listener.js'
import { catalogKeyFollower, openCredentialCipher } from './catalog/catalog-key.js'
import { CatalogStore } from './catalog/catalog-store.js'
import { CATALOG_LOCK_POOL_MAX, openCatalog, type CatalogPools } from './catalog/catalog-setup.js'
import { HostResolver } from './catalog/host-resolver.js'
import { InstanceRegistry } from './catalog/instance-registry.js'
import { connectionFromUrl, knexConfig, type PgConnection } from './db/knex-config.js'
import { ServerAdmin } from './db/server-admin.js'
import { SiloError } from './errors.js'
import { SiloEvents } from './events.js'
import { Ownership } from './lifecycle/ownership.js'
import { BudgetSharing } from './tenancy/budget-sharing.js'
import { PoolCache, type PoolCacheOptions } from './tenancy/pool-cache.js'
import { FleetMigrations } from './lifecycle/fleet-migrations.js'
import { Provisioner, tenantNotFoundBySlug } from './lifecycle/provisioner.js'
import { TenantAttacher } from './lifecycle/tenant-attacher.js'
import { withTenantDatabase } from './lifecycle/tenant-context.js'
import { harden, planHardening } from './lifecycle/server-hardening.js'
import { ServerFleet } from './lifecycle/server-fleet.js'
import { ServerRegistry } from './lifecycle/server-registry.js'
import { SPARES_MADE_AT_ONCE, type SpareDatabases } from './lifecycle/spare-databases.js'
import { TenantMigrator } from './lifecycle/tenant-migrator.js'
import { TenantMover } from './lifecycle/tenant-mover.js'
import { FreezeHolds } from './tenancy/freeze-holds.js'
import type { TenantTemplate } from './lifecycle/tenant-template.js'

/** The tenancy core, wired: what the HTTP app and the CLI both stand on. */
export interface Silo {
  /** The part of the configuration the core reads (the HTTP app and the CLI get theirs apart). */
  config: CoreConfig
  /** Connection settings of the admin URL (DATABASE_URL: the `default` server). */
  server: PgConnection
  /** PostgreSQL's version on the `default` server. */
  serverVersion: string
  /** DDL on the `default` server (the other servers' are in `servers`). */
  admin: ServerAdmin
  catalog: CatalogStore
  /** This catalog's identity and its marks on the `default` server's databases and roles. */
  ownership: Ownership
  resolver: HostResolver
  pools: PoolCache
  migrator: TenantMigrator
  /** Migrations of the whole fleet, one at a time in the deployment, recorded as runs (`migrate --all`, `/migrations`). */
  fleetMigrations: FleetMigrations
  /** The `default` server's template; undefined when TENANT_TEMPLATE=off. */
  template: TenantTemplate | undefined
  /** The `default` server's spares; undefined when TENANT_SPARES=0, TENANT_TEMPLATE=off or opened with `spares: false`. */
  spares: SpareDatabases | undefined
  /** Every registered server as this process reaches it: placement, and each one's admin connection, marks, template and spares. */
  servers: ServerFleet
  /** Registering, listing, draining and removing servers (`tenants servers`, `/servers`). */
  serverRegistry: ServerRegistry
  provisioner: Provisioner
  /** `tenants attach`: databases Silo did not create, served as tenants. */
  attacher: TenantAttacher
  /** `tenants move`: a tenant's database to another server, with a short write freeze. */
  mover: TenantMover
  /** Where requests for a tenant frozen by a move wait for its switch (MOVE_HOLD_MS). */
  holds: FreezeHolds
  /** Lifecycle events (tenants, pools, connections, request outcomes). */
  events: SiloEvents
  /**
   * Resolves once every catalog change committed before the call has been applied to this
   * instance's caches (through the catalog feed; at once when it does not listen). Rejects
   * while the feed is down.
   */
  syncCatalog: () => Promise<void>
  /**
   * Runs `fn` with a Knex bound to one tenant's database only, as the tenant's own role, on a
   * connection of its own closed afterwards (django-tenants' `tenant_context`): for jobs and
   * commands outside a request. Unknown slug: 404 TENANT_NOT_FOUND; an unreadable credential: 503
   * TENANT_UNAVAILABLE. Any status is allowed (a suspended tenant's data stays reachable to its
   * operator).
   */
  withTenant: <T>(slug: string, fn: (db: Knex) => Promise<T>) => Promise<T>
  close: () => Promise<void>
}

export interface OpenSiloOptions {
  /**
   * Follow catalog changes (LISTEN) to keep a domain index and the caches exact. On for
   * servers; a one-shot CLI command has no use for it.
   */
  listen?: boolean
  /**
   * Keep TENANT_SPARES databases cloned ahead of demand. On for servers; a one-shot CLI
   * command would leave its refills half-made when it exits.
   */
  spares?: boolean
  /** Tuning of the tenant pools that has no environment variable (see PoolCacheOptions). */
  pools?: Pick<PoolCacheOptions, 'growGraceFloorMs'>
}

/**
 * Connects to the server of `config.databaseUrl`, makes sure the catalog exists and is
 * migrated (on the server of `config.catalogDatabaseUrl` when set, else on that same server),
 * and builds the core's parts. Requires `databaseUrl` and `secretKey` (the server entry point
 * fills both in embedded dev mode).
 */
export async function openSilo (config: CoreConfig, options: OpenSiloOptions = {}): Promise<Silo> {
  if (config.databaseUrl === undefined) {
    throw new SiloError('CONFIG_INVALID', 'DATABASE_URL is required here (only `npm start` and `npm test` start an embedded PostgreSQL)')
  }
  if (config.secretKey === undefined) {
    throw new SiloError('CONFIG_INVALID', 'SECRET_KEY is required: it encrypts tenant credentials in the catalog (at least 16 characters)')
  }
  const server = connectionFromUrl(config.databaseUrl)
  // Enough for every locked operation at once (each holds one admin connection at a time) and the spares' background work.
  const adminDb: Knex = knex(knexConfig({ connection: { ...server, connectionTimeoutMillis: 5000 }, pool: { min: 0, max: CATALOG_LOCK_POOL_MAX + SPARES_MADE_AT_ONCE } }))
  let catalogPools: CatalogPools | undefined
  let listener: CatalogListener | undefined
  let servers: ServerFleet | undefined
  let sharing: BudgetSharing | undefined
  let heartbeatDb: Knex | undefined
  try {
    const admin = new ServerAdmin(adminDb)
    const serverVersion = await admin.serverVersion()
    if (config.managedServer) {
      // A server Silo runs for itself: a tenant role reaches its own database and nothing else.
      const plan = await planHardening(adminDb)
      if (plan.revoke.length > 0) await harden(adminDb, plan)
    }
    const catalogServer = config.catalogDatabaseUrl === undefined ? server : connectionFromUrl(config.catalogDatabaseUrl)
    const catalogConnection = { ...catalogServer, database: config.catalogDatabase }
    catalogPools = catalogServer === server
      ? await openCatalog(admin, catalogConnection, serverVersion)
      : await openCatalogElsewhere(catalogServer, config.catalogDatabase, admin)
    const catalogDb = catalogPools.db
    const cipher = await openCredentialCipher(catalogDb, { current: config.secretKey, previous: config.secretKeyPrevious })
    const catalog = new CatalogStore(catalogDb, cipher, catalogPools.locks, server)
    const identity = await catalog.identity()
    const events = new SiloEvents()
    servers = new ServerFleet({
      catalog,
      identity: { id: identity.id, database: config.catalogDatabase },
      defaultServer: { connection: server, admin, serverVersion },
      prefix: config.tenantDbPrefix,
      template: config.tenantTemplate,
      spares: (options.spares ?? true) ? config.tenantSpares : 0,
      sparesMax: config.tenantSparesMax,
      events
    })
    const { ownership, template, spares } = await servers.start()
    // Once per catalog: tenants made before ownership marks get theirs, so doctor knows them (all on `default`: servers came later).
    if (!identity.objectsMarked) {
      await ownership.markKnown(await catalog.listTenants())
      await catalog.setObjectsMarked()
    }
    const resolver = new HostResolver(catalog, { ttlMs: config.hostCacheTtlMs, max: config.hostCacheMax })
    if (options.listen ?? true) {
      listener = new CatalogListener({
        connection: catalogConnection,
        resolver,
        onState: (state) => { events.emit('catalog:feed', state) },
        onKeyChange: catalogKeyFollower(cipher, events),
        preload: async () => await catalog.hostsWithTenants(config.hostCacheMax)
      })
      await listener.start()
    }
    const pools = new PoolCache({
      events,
      connectionBudget: config.connectionBudget,
      connectionQueueMax: config.connectionQueueMax,
      tenantConnectConcurrency: config.tenantConnectConcurrency,
      tenantPoolMax: config.tenantPoolMax,
      tenantPoolsMax: config.tenantPoolsMax,
      tenantIdleTimeoutMs: config.tenantIdleTimeoutMs,
      tenantAcquireTimeoutMs: config.tenantAcquireTimeoutMs,
      tenantRequestsMax: config.tenantRequestsMax,
      ...options.pools
    })
    if (options.listen ?? true) {
      // A serving instance takes its share of each budgeted server's connections with the others,
      // on a catalog connection of its own: a catalog pool busy with look-ups or operations must
      // not hold back the heartbeat that keeps its share (nor a heartbeat count as a look-up).
      heartbeatDb = knex(knexConfig({ connection: { ...catalogConnection, application_name: 'silo-heartbeat', connectionTimeoutMillis: 3000 }, pool: { min: 0, max: 1 }, serverVersion, quiet: true }))
      sharing = new BudgetSharing({ registry: new InstanceRegistry(heartbeatDb, randomUUID()), pools, events })
      await sharing.start()
    }
    const migrator = new TenantMigrator()
    const provisioner = new Provisioner({
      catalog, servers, migrator, prefix: config.tenantDbPrefix, reservedHosts: [config.adminHost], resolver, pools, events
    })
    const mover = new TenantMover({ catalog, servers, migrator, holdMs: config.moveHoldMs, resolver, pools, events })
    const fleetMigrations = new FleetMigrations({ catalog, migrator, events })
    servers.startSpares()
    const openedCatalog = catalogPools
    const fleet = servers
    const shared = sharing
    const heartbeat = heartbeatDb
    return {
      config,
      server,
      serverVersion,
      admin,
      catalog,
      ownership,
      resolver,
      pools,
      migrator,
      fleetMigrations,
      template,
      spares,
      servers: fleet,
      serverRegistry: new ServerRegistry({ catalog, servers: fleet, prefix: config.tenantDbPrefix }),
      provisioner,
      attacher: new TenantAttacher({ catalog, servers: fleet, migrator, reservedHosts: [config.adminHost], resolver, pools, events }),
      mover,
      holds: new FreezeHolds(resolver, config.moveHoldMs),
      events,
      syncCatalog: async () => { await listener?.sync() },
      withTenant: async (slug, fn) => {
        const tenant = await catalog.tenantBySlug(slug)
        if (tenant === null) throw tenantNotFoundBySlug(slug)
        return await withTenantDatabase(tenant, fn)
      },
      close: async () => {
        await mover.close()
        await fleetMigrations.close()
        await listener?.stop()
        await fleet.close()
        await pools.close()
        // Its connections closed, its claims go: the other instances may take its share.
        await shared?.stop()
        await heartbeat?.destroy()
        await openedCatalog.locks.destroy()
        await openedCatalog.db.destroy()
        await adminDb.destroy()
      }
    }
  } catch (error) {
    await listener?.stop()
    await sharing?.stop()
    await heartbeatDb?.destroy()
    await servers?.close()
    await catalogPools?.locks.destroy()
    await catalogPools?.db.destroy()
    await adminDb.destroy()
    throw error
  }
}

/**
 * The catalog on a server of its own (CATALOG_DATABASE_URL): created and migrated there
 * through a short-lived admin connection to that server.
 */
async function openCatalogElsewhere (server: PgConnection, database: string, tenantServer: ServerAdmin): Promise<CatalogPools> {
  const adminDb = knex(knexConfig({ connection: { ...server, connectionTimeoutMillis: 5000 }, pool: { min: 0, max: 1 } }))
  try {
    const admin = new ServerAdmin(adminDb)
    return await openCatalog(admin, { ...server, database }, await admin.serverVersion(), tenantServer)
  } finally {
    await adminDb.destroy()
  }
}
