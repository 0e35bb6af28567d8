import { resolve } from 'node:path'
import type { Command } from 'commander'
import { assertDomain, assertSlug } from '../lifecycle/tenant-names.js'
import { withSilo } from './open-silo.js'
import { cliServerName } from './server-commands.js'
import { UsageError, collect, type Action } from './usage.js'

/** `export` and `import`: one tenant to a portable archive file, and a new tenant from one. */
export function archiveCommands (program: Command, action: Action): void {
  program.command('export <slug>')
    .description('write a portable archive of the tenant while it serves: one consistent snapshot of every table (COPY text), its sequences, its schema version and a checksum, gzip-compressed')
    .requiredOption('--out <file>', 'the archive to write (written to <file>.partial and renamed when complete; an existing file is replaced then)')
    .action(action(async (slug: string, options: { out: string }) => {
      assertSlug(slug)
      const path = resolve(options.out)
      const { exportTenant } = await import('../lifecycle/tenant-exporter.js')
      const result = await withSilo(async (silo) => await exportTenant(silo.catalog, slug, path))
      console.log(`exported ${result.slug} (schema ${result.schemaVersion ?? '-'}): ${result.tables} tables, ${result.rows} rows, ${result.sequences} sequences, ${megabytes(result.bytes)} to ${options.out} [${seconds(result.durationMs)}]`)
      return true
    }))

  program.command('import <slug>')
    .description('create a tenant from an archive: the whole file is checked first (refused, with nothing made, when corrupt, truncated, not a Silo archive or from a newer schema), then the tenant is created with its rows and serves at once')
    .requiredOption('--from <file>', 'the archive (from `tenants export`)')
    .requiredOption('--domain <host>', 'a host name the tenant answers on (repeatable)', collect, [])
    .option('--name <text>', 'display name (default: the slug)')
    .option('--server <name>', 'put its database on this server (default: the active server with the fewest tenants per weight)')
    .action(action(async (slug: string, options: { from: string, domain: string[], name?: string, server?: string }) => {
      assertSlug(slug)
      if (options.domain.length === 0) throw new UsageError('at least one --domain is required')
      options.domain.forEach(assertDomain)
      if (options.server !== undefined) cliServerName(options.server)
      const { importTenant } = await import('../lifecycle/tenant-importer.js')
      const { tenant, archive, durationMs } = await withSilo(async (silo) => await importTenant(silo, {
        slug,
        from: resolve(options.from),
        domains: options.domain,
        ...(options.name === undefined ? {} : { name: options.name }),
        ...(options.server === undefined ? {} : { server: options.server })
      }))
      const rows = archive.tables.reduce((sum, table) => sum + table.rows, 0)
      console.log(`imported ${tenant.slug} from ${options.from} on server ${tenant.server ?? '-'} (database ${tenant.databaseName}, schema ${tenant.schemaVersion ?? '-'}, archive schema ${archive.header.schemaVersion ?? '-'}): ${archive.tables.length} tables, ${rows} rows, at ${tenant.domains.join(', ')} [${seconds(durationMs)}]`)
      return true
    }))
}

const megabytes = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MB`
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
