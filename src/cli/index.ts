#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander'
import { SiloError } from '../errors.js'
import { assertDomain, assertSlug } from '../lifecycle/tenant-names.js'
import { collect, fleetTargets, UsageError, type FleetCommandOptions } from './usage.js'
import { keyCommands } from './key-commands.js'
import { maintenanceCommands } from './maintenance-commands.js'
import { cliServerName, serverCommands } from './server-commands.js'
import { withSilo } from './open-silo.js'
import { tenantView } from '../schemas/tenant-view.js'
import { TENANT_STATUSES, type CatalogStore, type TenantFilter, type TenantStatus } from '../catalog/catalog-store.js'
import { attachCommand } from './attach-command.js'
import { moveCommand } from './move-command.js'
import { archiveCommands } from './archive-commands.js'
import { jsonArrayElements, jsonArrayEnd, oneLine, pagedOutput, redactUrls, table, tenantColumns, tenantLines, tenantsTable } from './output.js'

/** One line for stderr; a failed create also says why, from its cause. */
function describe (error: unknown): string {
  const message = (error as Error).message
  if (error instanceof SiloError && error.code === 'PROVISIONING_FAILED' && error.cause instanceof Error) {
    return `${message}: ${error.cause.message}`
  }
  return message
}

/** Runs a command body; a `false` result or a throw sets a failing exit code (2 for usage). */
function action<A extends unknown[]> (body: (...args: A) => Promise<boolean | undefined>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      if (await body(...args) === false) process.exitCode = 1
    } catch (error) {
      process.stderr.write(`tenants: ${redactUrls(describe(error).split('\n')[0] ?? '')}\n`)
      process.exitCode = error instanceof UsageError ? 2 : 1
    }
  }
}

function concurrency (value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('must be an integer from 1 to 64')
  return n
}

function tenantStatus (value: string): TenantStatus {
  const status = TENANT_STATUSES.find((known) => known === value)
  if (status === undefined) throw new InvalidArgumentError(`must be one of ${TENANT_STATUSES.join(', ')}`)
  return status
}

function positive (value: string): number {
  const n = Number(value)
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number from 1')
  return n
}

/** Tenants per query of `list`: a fleet of any size is walked a page at a time, each printed as it comes. */
const LIST_PAGE = 1000

/**
 * `list`: every tenant the filter picks (up to `limit`), one page in memory at a time. A list
 * of one page prints as it always did; a longer table takes its widths from one query over the
 * whole list first. The pages are separate queries: a tenant made during the walk is listed
 * when its slug comes after the page being read.
 */
async function printTenants (catalog: CatalogStore, options: TenantFilter & { json?: boolean, limit?: number }): Promise<void> {
  const write = pagedOutput()
  const filter: TenantFilter = { status: options.status, server: options.server, search: options.search }
  let left = options.limit ?? Number.POSITIVE_INFINITY
  let after: string | undefined
  let widths: number[] | undefined
  let printed = 0
  for (;;) {
    const page = await catalog.tenantPage({ ...filter, after, limit: Math.min(LIST_PAGE, left) })
    left -= page.items.length
    const more = page.next !== null && left > 0
    let text: string
    if (options.json === true) text = jsonArrayElements(page.items.map(tenantView), printed === 0)
    else if (printed === 0 && !more) text = `${tenantsTable(page.items)}\n`
    else {
      widths ??= tenantColumns(await catalog.tenantColumnLengths(filter))
      text = tenantLines(page.items, widths, printed === 0)
    }
    printed += page.items.length
    if (!await write(text) || !more) break
    after = page.next ?? undefined
  }
  if (options.json === true) await write(jsonArrayEnd(printed === 0))
}

const program = new Command('tenants')
  .description('Provision and operate Silo tenants (one PostgreSQL database each).\nUses DATABASE_URL, or the embedded dev server of DATA_DIR.')
  .showSuggestionAfterError(false)
  // Commander's own errors quote what was typed (`unknown option '--admin-url=postgres://...'`):
  // without a URL's password, and on one line whatever the quote holds. Set before any command is
  // made, so every command inherits it.
  .configureOutput({ outputError: (text, write) => { write(`${oneLine(redactUrls(text.replace(/\n$/, '')))}\n`) } })

program.command('create <slug>')
  .description('create a tenant: role, database, schema, domains (the first is primary)')
  .requiredOption('--domain <host>', 'a host name the tenant answers on (repeatable)', collect, [])
  .option('--name <text>', 'display name (default: the slug)')
  .option('--seed', 'add demo articles')
  .option('--server <name>', 'put its database on this server (default: the active server with the fewest tenants per weight)')
  .action(action(async (slug: string, options: { domain: string[], name?: string, seed?: boolean, server?: string }) => {
    assertSlug(slug)
    if (options.domain.length === 0) throw new UsageError('at least one --domain is required')
    options.domain.forEach(assertDomain)
    if (options.server !== undefined) cliServerName(options.server)
    const tenant = await withSilo(async (silo) => await silo.provisioner.create({
      slug,
      domains: options.domain,
      seed: options.seed === true,
      ...(options.name === undefined ? {} : { name: options.name }),
      ...(options.server === undefined ? {} : { server: options.server })
    }))
    console.log(`created ${tenant.slug} on server ${tenant.server} (database ${tenant.databaseName}, schema ${tenant.schemaVersion ?? '-'}) at ${tenant.domains.join(', ')}`)
    return true
  }))

program.command('list')
  .description('list tenants in slug order with status, server, schema version and domains, a page at a time')
  .option('--json', 'print one JSON array')
  .option('--status <status>', `only tenants in this status (${TENANT_STATUSES.join(', ')})`, tenantStatus)
  .option('--server <name>', 'only tenants on this server')
  .option('--search <text>', 'only tenants whose slug, name or a domain contains this text, in any case')
  .option('--limit <n>', 'the first n tenants only (default: every one)', positive)
  .action(action(async (options: TenantFilter & { json?: boolean, limit?: number }) => {
    if (options.server !== undefined) cliServerName(options.server)
    await withSilo(async (silo) => { await printTenants(silo.catalog, options) })
    return true
  }))

program.command('status')
  .description("each tenant's server and schema version against the newest migration")
  .option('--json', 'print JSON')
  .action(action(async (options: { json?: boolean }) => {
    const { tenants, latest } = await withSilo(async (silo) => ({
      tenants: await silo.catalog.listTenants(),
      latest: await silo.migrator.latestVersion()
    }))
    // A tenant attached with --no-migrate has a schema of its own: neither current nor behind.
    const rows = tenants.map((tenant) => ({
      slug: tenant.slug,
      status: tenant.status,
      server: tenant.server,
      version: tenant.schemaVersion,
      latest,
      schemaManaged: tenant.schemaManaged,
      current: tenant.schemaVersion === latest
    }))
    const managed = rows.filter((row) => row.schemaManaged)
    const behind = managed.filter((row) => !row.current)
    const own = rows.length - managed.length
    if (options.json === true) console.log(JSON.stringify(rows, null, 2))
    else {
      console.log(`newest migration: ${latest ?? '-'}`)
      const state = (row: typeof rows[number]): string => !row.schemaManaged ? 'own schema' : row.current ? 'current' : 'behind'
      if (rows.length > 0) console.log(table(['SLUG', 'STATUS', 'SERVER', 'SCHEMA', 'STATE'], rows.map((row) => [row.slug, row.status, row.server ?? '-', row.version ?? '-', state(row)])))
      console.log(`${behind.length} of ${managed.length} tenants behind${own > 0 ? ` (and ${own} with a schema of their own)` : ''}`)
    }
    return true
  }))

program.command('migrate [slugs...]')
  .description('migrate tenants to the newest schema; every tenant is attempted, exit 1 if any failed')
  .option('--all', 'every tenant')
  .option('--concurrency <n>', 'tenants at once on each server (1-64; default MIGRATE_CONCURRENCY)', concurrency)
  .option('--json', 'print JSON results')
  .action(action(async (slugs: string[], options: Partial<FleetCommandOptions>) => {
    const targets = fleetTargets(slugs, options)
    const { runFleet } = await import('./fleet-command.js')
    return await withSilo(async (silo, config) => await runFleet(silo, targets, 'latest', { ...options, concurrency: options.concurrency ?? config.migrateConcurrency }))
  }))

program.command('rollback [slugs...]')
  .description('roll back the last migration batch of tenants; without --yes, print what it would undo and exit 2')
  .option('--all', 'every tenant')
  .option('--yes', 'confirm: this can drop tables and their data')
  .option('--concurrency <n>', 'tenants at once on each server (1-64; default MIGRATE_CONCURRENCY)', concurrency)
  .option('--json', 'print JSON (the plan without --yes, the results with it)')
  .action(action(async (slugs: string[], options: Partial<FleetCommandOptions>) => {
    const targets = fleetTargets(slugs, options)
    const { runRollback } = await import('./fleet-command.js')
    return await withSilo(async (silo, config) => await runRollback(silo, targets, { ...options, concurrency: options.concurrency ?? config.migrateConcurrency }))
  }))

for (const [name, status] of [['suspend', 'suspended'], ['resume', 'active']] as const) {
  program.command(`${name} <slug>`)
    .description(name === 'suspend' ? 'stop serving a tenant (403 TENANT_SUSPENDED); its data stays' : 'serve a suspended tenant again')
    .action(action(async (slug: string) => {
      assertSlug(slug)
      const tenant = await withSilo(async (silo) => await silo.provisioner.setStatus(slug, status))
      console.log(`${tenant.slug} is ${tenant.status}`)
      return true
    }))
}

const domains = program.command('domains').description("manage a tenant's domains")
domains.command('add <slug> <host>')
  .description('add a domain to a tenant')
  .action(action(async (slug: string, host: string) => {
    assertSlug(slug)
    const normalized = assertDomain(host)
    const tenant = await withSilo(async (silo) => await silo.provisioner.addDomain(slug, normalized))
    console.log(`${tenant.slug}: ${tenant.domains.join(', ')}`)
    return true
  }))
domains.command('remove <host>')
  .description('remove a domain from whichever tenant has it')
  .action(action(async (host: string) => {
    const normalized = assertDomain(host)
    await withSilo(async (silo) => { await silo.provisioner.removeDomain(normalized) })
    console.log(`removed ${normalized}`)
    return true
  }))

program.command('drop <slug>')
  .description('drop the database (closing its connections), the role and the catalog entry; an attached tenant is only detached (its database stays) unless --drop-database')
  .option('--yes', 'confirm: this deletes the tenant\'s data')
  .option('--drop-database', 'of an attached tenant: drop its database too (never its role)')
  .action(action(async (slug: string, options: { yes?: boolean, dropDatabase?: boolean }) => {
    assertSlug(slug)
    const { detached } = await withSilo(async (silo) => {
      const tenant = await silo.catalog.tenantBySlug(slug)
      // Detaching deletes nothing: only a drop that deletes data asks for --yes.
      const deletes = tenant === null || !tenant.attached || options.dropDatabase === true
      if (deletes && options.yes !== true) throw new UsageError(`refusing to drop ${slug} without --yes (this deletes its data)`)
      return await silo.provisioner.drop(slug, { dropDatabase: options.dropDatabase === true })
    })
    console.log(detached ? `detached ${slug}${options.dropDatabase === true ? ' and dropped its database' : ' (its database stays)'}` : `dropped ${slug}`)
    return true
  }))

attachCommand(program, action)
moveCommand(program, action)
archiveCommands(program, action)
serverCommands(program, action)
maintenanceCommands(program, action)
keyCommands(program, action)

await program.parseAsync()
