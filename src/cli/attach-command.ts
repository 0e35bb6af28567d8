import type { Command } from 'commander'
import { parseConnectionUrl } from '../db/connection-url.js'
import { assertDomain, assertSlug } from '../lifecycle/tenant-names.js'
import { withSilo } from './open-silo.js'
import { UsageError, collect, urlFromStdin, type Action } from './usage.js'

/** `attach` and `reattach`: serve a database Silo did not create as a tenant; point one at a new URL. */
export function attachCommand (program: Command, action: Action): void {
  program.command('attach <slug>')
    .description('serve an existing database as a tenant: its URL is checked, stored encrypted and never shown again; the tenant migrations run there as its role (refused when its own tables conflict with them)')
    .requiredOption('--url <database-url>', 'postgres://user:password@host:port/database, the role the tenant\'s requests run as (not a superuser); `-` reads it from standard input, keeping the password out of shell history and the process list')
    .requiredOption('--domain <host>', 'a host name the tenant answers on (repeatable)', collect, [])
    .option('--name <text>', 'display name (default: the slug)')
    .option('--no-migrate', 'leave its schema as it is: no tenant migrations now or in fleet runs, and no schema guard')
    .action(action(async (slug: string, options: { url: string, domain: string[], name?: string, migrate: boolean }) => {
      assertSlug(slug)
      if (options.domain.length === 0) throw new UsageError('at least one --domain is required')
      options.domain.forEach(assertDomain)
      const url = options.url === '-' ? await urlFromStdin('the database URL') : options.url
      parseConnectionUrl(url, 'The database URL')
      const tenant = await withSilo(async (silo) => await silo.attacher.attach({
        slug, url, domains: options.domain, name: options.name, migrate: options.migrate
      }))
      const where = tenant.server === null ? 'on no registered server' : `on server ${tenant.server}`
      console.log(`attached ${tenant.slug}: database ${tenant.databaseName} ${where}, schema ${tenant.schemaVersion ?? (tenant.schemaManaged ? '-' : 'its own (not migrated)')}, at ${tenant.domains.join(', ')}`)
      return true
    }))

  program.command('reattach <slug>')
    .description('point an attached tenant at a new URL (its role\'s password rotated, its database moved): checked as attach checks it, migrated there unless its schema is its own; its connections move over without a gap')
    .requiredOption('--url <database-url>', 'the new postgres://user:password@host:port/database; `-` reads it from standard input')
    .action(action(async (slug: string, options: { url: string }) => {
      assertSlug(slug)
      const url = options.url === '-' ? await urlFromStdin('the database URL') : options.url
      parseConnectionUrl(url, 'The database URL')
      const tenant = await withSilo(async (silo) => await silo.attacher.reattach(slug, url))
      console.log(`reattached ${tenant.slug}: database ${tenant.databaseName} ${tenant.server === null ? 'on no registered server' : `on server ${tenant.server}`}`)
      return true
    }))
}
