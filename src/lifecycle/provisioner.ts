import { randomBytes } from 'node:crypto'
import { CatalogConflict, SETTABLE_STATUSES, type CatalogStore, type SettableStatus, type TenantRecord, type TenantStatus, type TenantSummary } from '../catalog/catalog-store.js'
import type { HostResolver } from '../catalog/host-resolver.js'
import { SiloError, tenantLocked, tenantStateConflict, validationFailed } from '../errors.js'
import type { DatabaseSource, SiloEvents } from '../events.js'
import type { PoolCache } from '../tenancy/pool-cache.js'
import type { ServerFleet, ServerParts } from './server-fleet.js'
import { dropAttachedDatabase } from './tenant-attacher.js'
import type { TenantMigrator } from './tenant-migrator.js'
import { assertDomain, assertSlug, assertTenantName, claimableDomain, tenantDatabaseName } from './tenant-names.js'

export interface ProvisionerDeps {
  catalog: CatalogStore
  /**
   * The servers tenant databases go on: placement, and on each server its admin connection,
   * this catalog's marks (what a create makes is marked; what a drop removes is checked against
   * them first), its template (cloned from when there is one) and its spares (claimed first).
   */
  servers: ServerFleet
  migrator: TenantMigrator
  /** Prefix of every tenant database and role name. */
  prefix: string
  /** Hosts no tenant may claim (the admin host). */
  reservedHosts?: string[]
  /**
   * Called before each step of create and drop; a fault-injection seam for tests (a throw here
   * behaves like that step failing) and a progress hook for callers.
   */
  beforeStep?: (step: ProvisioningStep, slug: string) => Promise<void> | void
  /** When the provisioner runs inside a server, the caches to keep in step. */
  resolver?: HostResolver
  pools?: PoolCache
  events?: SiloEvents
}

export type ProvisioningStep = 'catalog' | 'role' | 'database' | 'migrate' | 'seed' | 'import' | 'activate' | 'drop-database' | 'drop-role' | 'drop-catalog'

export interface CreateTenantInput {
  slug: string
  name?: string
  domains: string[]
  seed?: boolean
  server?: string // pinned to this server; placement chooses otherwise
  /** Fills the new database before it goes active (an import), as the step 'import'; a failure undoes the create. */
  load?: (tenant: TenantRecord) => Promise<void>
}

export const tenantNotFoundBySlug = (slug: string) => new SiloError('TENANT_NOT_FOUND', `No tenant with slug ${slug}`)

/**
 * Creates, changes and drops tenants: catalog rows, the role and database on the server, and
 * the tenant schema. Used by the CLI and the admin API alike. Every operation on one tenant
 * holds that tenant's catalog lock, so concurrent calls get a clear 409 instead of a race.
 */
export class Provisioner {
  readonly #deps: ProvisionerDeps

  constructor (deps: ProvisionerDeps) {
    this.#deps = deps
  }

  /**
   * Catalog row (provisioning) → role and database (a spare, or cloned from the template, or
   * migrated; CONNECT for its owner only) → seeds or an import → active. On failure everything made
   * is undone; a tenant a crash left provisioning or failed is removed by the next create of its slug.
   */
  async create (input: CreateTenantInput): Promise<TenantSummary> {
    const slug = assertSlug(input.slug)
    const domains = [...new Set(input.domains.map((domain) => claimableDomain(domain, this.#deps.reservedHosts)))]
    if (domains.length === 0) throw validationFailed('A tenant needs at least one domain')
    const name = assertTenantName(input.name, slug)
    const databaseName = tenantDatabaseName(this.#deps.prefix, slug)
    const { catalog, migrator } = this.#deps
    const started = performance.now()

    return await this.#locked(slug, async () => {
      const { server, tenant } = await this.#register({ slug, name, databaseName, domains, server: input.server })
      const { admin, ownership } = server
      let summary: TenantSummary
      let source: DatabaseSource = 'spare'
      try {
        await this.#step('role', slug)
        let version = await this.#claimSpare(server, tenant)
        if (version === undefined) {
          const mark = ownership.mark('tenant')
          await admin.ensureRole(tenant.database.user, tenant.database.password, mark)
          await this.#step('database', slug)
          const cloned = await this.#cloneFromTemplate(server, tenant)
          if (!cloned) await admin.ensureDatabase(tenant.database.name, tenant.database.user, { mark })
          source = cloned ? 'template' : 'migrations'
          await this.#step('migrate', slug)
          version = cloned ? await server.template?.ready() ?? null : (await migrator.migrate(tenant)).after
        }
        if (input.seed === true) {
          await this.#step('seed', slug)
          await migrator.seed(tenant)
        }
        if (input.load !== undefined) {
          await this.#step('import', slug)
          await input.load(tenant)
        }
        await this.#step('activate', slug)
        summary = await catalog.activate(slug, version)
      } catch (error) {
        await this.#removeEverything(tenant).catch(async () => { await catalog.setStatus(slug, 'failed') })
        // A refusal (a name another catalog took meanwhile) keeps its own code and status.
        if (error instanceof SiloError && error.statusCode < 500) throw error
        throw new SiloError('PROVISIONING_FAILED', `Provisioning ${slug} failed; nothing was left behind`, { cause: error })
      }
      for (const host of domains) this.#deps.resolver?.invalidateHost(host)
      this.#deps.events?.emit('tenant:created', { slug, durationMs: performance.now() - started, source })
      return summary
    })
  }

  /**
   * Drops the tenant's database (closing its connections), its role and its catalog rows. An
   * attached tenant is only detached (its entry goes; its database and role stay), unless
   * `dropDatabase`: then its database goes first (a failure leaves it attached as it was), never
   * its role.
   */
  async drop (slug: string, options: { dropDatabase?: boolean } = {}): Promise<{ detached: boolean }> {
    assertSlug(slug)
    return await this.#locked(slug, async () => {
      const { catalog } = this.#deps
      const tenant = await catalog.tenantBySlug(slug)
      if (tenant === null) throw tenantNotFoundBySlug(slug)
      await catalog.setStatus(slug, 'dropping')
      this.#forget(tenant)
      if (tenant.attached) {
        if (options.dropDatabase === true) {
          try {
            await dropAttachedDatabase(tenant, this.#deps.servers)
          } catch (error) {
            await catalog.setStatus(slug, tenant.status)
            this.#forget(tenant)
            throw error
          }
        }
        await catalog.deleteTenant(slug)
      } else {
        await this.#removeEverything(tenant)
      }
      this.#deps.events?.emit('tenant:dropped', { slug, ...(tenant.attached ? { detached: true } : {}) })
      return { detached: tenant.attached }
    })
  }

  async setStatus (slug: string, status: SettableStatus): Promise<TenantSummary> {
    assertSlug(slug)
    return await this.#locked(slug, async () => {
      const tenant = await this.#deps.catalog.tenantBySlug(slug)
      if (tenant === null) throw tenantNotFoundBySlug(slug)
      if (!(SETTABLE_STATUSES as readonly TenantStatus[]).includes(tenant.status)) {
        throw tenantStateConflict(slug, tenant.status)
      }
      await this.#deps.catalog.setStatus(slug, status)
      this.#forget(tenant)
      if (tenant.status !== status) this.#deps.events?.emit(status === 'suspended' ? 'tenant:suspended' : 'tenant:resumed', { slug })
      return await this.#summary(slug)
    })
  }

  async addDomain (slug: string, domain: string): Promise<TenantSummary> {
    assertSlug(slug)
    const host = claimableDomain(domain, this.#deps.reservedHosts)
    const tenant = await this.#deps.catalog.tenantBySlug(slug)
    if (tenant === null) throw tenantNotFoundBySlug(slug)
    try {
      await this.#deps.catalog.addDomain(tenant.id, host)
    } catch (error) {
      throw error instanceof CatalogConflict ? error.refusal() : error
    }
    this.#deps.resolver?.invalidateHost(host)
    this.#deps.resolver?.invalidateTenant(tenant.id)
    return await this.#summary(slug)
  }

  async removeDomain (domain: string, slug?: string): Promise<void> {
    const host = assertDomain(domain)
    if (slug !== undefined) {
      const tenant = await this.#deps.catalog.tenantBySlug(assertSlug(slug))
      if (tenant === null) throw tenantNotFoundBySlug(slug)
      const domains = await this.#deps.catalog.domainsOf(tenant.id)
      if (!domains.includes(host)) throw new SiloError('NOT_FOUND', `Domain ${host} does not belong to ${slug}`)
    }
    const removed = await this.#deps.catalog.removeDomain(host)
    if (removed === null) throw new SiloError('NOT_FOUND', `Domain ${host} is not in the catalog`)
    this.#deps.resolver?.forgetHost(host)
    this.#deps.resolver?.invalidateTenant(removed)
  }

  /**
   * Placement and the catalog entry (provisioning) under the placement lock: two creates at once
   * count each other. Only when something is in the way (the name on the server, the slug or a
   * domain in the catalog) is a leftover of the slug looked for (provisioning or failed: a crash);
   * it is removed and the entry made again. Anything else in the way is refused.
   */
  async #register (entry: { slug: string, name: string, databaseName: string, domains: string[], server?: string }): Promise<{ server: ServerParts, tenant: TenantRecord }> {
    const { catalog, servers } = this.#deps
    const { slug, databaseName } = entry
    for (let attempt = 0; ; attempt++) {
      const placed = await catalog.withLock<{ server: ServerParts, tenant: TenantRecord } | { refused: unknown }>('placement', 'exclusive', async () => {
        // Never adopt a database or role this catalog did not make (another catalog's tenant).
        const { parts: server, answer: taken } = await servers.place(entry.server, async (parts) => await parts.admin.databaseOrRoleExists(databaseName))
        if (taken) return { refused: new SiloError('SLUG_TAKEN', `A database or role named ${databaseName} already exists on server ${server.name} outside this catalog`) }
        await this.#step('catalog', slug)
        try {
          const tenant = await catalog.insertTenant({
            slug, name: entry.name, serverId: server.id, databaseName, databaseUser: databaseName, password: randomBytes(24).toString('base64url'), domains: entry.domains
          })
          return { server, tenant }
        } catch (error) {
          if (error instanceof CatalogConflict) return { refused: error.refusal() }
          throw error
        }
      })
      if ('tenant' in placed) return placed
      const existing = await catalog.tenantBySlug(slug)
      if (existing === null || attempt > 0) throw placed.refused
      if (existing.status !== 'provisioning' && existing.status !== 'failed') throw new SiloError('SLUG_TAKEN', `Slug ${slug} is taken`)
      await this.#removeEverything(existing)
    }
  }

  async #summary (slug: string): Promise<TenantSummary> {
    const [summary] = await this.#deps.catalog.listTenants([slug])
    if (summary === undefined) throw tenantNotFoundBySlug(slug)
    return summary
  }

  async #locked<T> (slug: string, fn: () => Promise<T>): Promise<T> {
    const result = await this.#deps.catalog.withTenantLock(slug, fn)
    if (result === undefined) throw tenantLocked(slug)
    return result.value
  }

  #forget (tenant: TenantRecord): void {
    this.#deps.resolver?.invalidateTenant(tenant.id)
    this.#deps.pools?.evict(tenant.id)
  }

  /**
   * The tenant's database and role made from a spare in one step; their schema version, or undefined
   * when there is no spare to claim (or the template is unusable: the usual path falls back too).
   */
  async #claimSpare (server: ServerParts, tenant: TenantRecord): Promise<string | null | undefined> {
    const { spares } = server
    if (spares === undefined) return undefined
    try {
      return await spares.claim(tenant.database.name, tenant.database.user, tenant.database.password)
    } catch {
      return undefined
    }
  }

  /** True when the database was cloned from the template; false when there is none or it failed. */
  async #cloneFromTemplate (server: ServerParts, tenant: TenantRecord): Promise<boolean> {
    const { template, ownership } = server
    if (template === undefined) return false
    try {
      await template.clone(tenant.database.name, tenant.database.user, { mark: ownership.mark('tenant') })
      return true
    } catch (error) {
      if (error instanceof SiloError) throw error
      this.#deps.events?.emit('template:unavailable', { slug: tenant.slug, error: error as Error })
      template.reset()
      await ownership.dropDatabase(tenant.database.name)
      return false
    }
  }

  async #step (step: ProvisioningStep, slug: string): Promise<void> {
    await this.#deps.beforeStep?.(step, slug)
  }

  /**
   * Database, role, catalog rows, in that order, each tolerating what is already gone: the
   * catalog row goes last, so an interrupted removal is still known and a re-run finishes it.
   * The database and role go only if they carry this catalog's mark: one another catalog marked
   * (two catalogs creating one name at once on a shared server), or one with no mark at all (made
   * by someone else between this create's check and its CREATE), is left to its owner. Everything
   * Silo makes is marked from its first statement, and tenants from before marks are marked when
   * their catalog is first opened, so nothing of this catalog's is unmarked here.
   */
  async #removeEverything (tenant: TenantRecord): Promise<void> {
    // An attached tenant's database and role are not Silo's: only its entry goes.
    if (tenant.attached) {
      await this.#deps.catalog.deleteTenant(tenant.slug)
      return
    }
    const { ownership } = await this.#deps.servers.byId(tenant.server.id)
    await this.#step('drop-database', tenant.slug)
    await ownership.dropDatabase(tenant.database.name)
    await this.#step('drop-role', tenant.slug)
    await ownership.dropRole(tenant.database.user)
    await this.#step('drop-catalog', tenant.slug)
    await this.#deps.catalog.deleteTenant(tenant.slug)
  }
}
