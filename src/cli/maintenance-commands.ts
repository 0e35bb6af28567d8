import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import type { Silo } from '../silo.js'
import { diagnose, isHealthy, repair, type DoctorDeps } from '../tenancy/doctor.js'
import { tenantNotFoundBySlug } from '../tenancy/provisioner.js'
import { listSpares } from '../tenancy/spare-databases.js'
import { templateDatabaseName } from '../tenancy/tenant-template.js'
import { assertSlug } from '../tenancy/tenant-names.js'
import { UsageError } from './fleet-command.js'
import { withSilo } from './open-silo.js'
import { table } from './output.js'

type Action = <A extends unknown[]>(body: (...args: A) => Promise<boolean | undefined>) => (...args: A) => Promise<void>

/** Besides tenants, Silo owns the template and the complete spares (a half-made spare is an orphan). */
const doctorDeps = async (silo: Silo): Promise<DoctorDeps> => ({
  admin: silo.admin,
  catalog: silo.catalog,
  provisioner: silo.provisioner,
  prefix: silo.config.tenantDbPrefix,
  reserved: [
    templateDatabaseName(silo.config.tenantDbPrefix),
    ...(await listSpares(silo.admin, silo.config.tenantDbPrefix)).map((spare) => spare.name)
  ]
})

interface QueryResult { command: string, rowCount: number | null, rows: Array<Record<string, unknown>>, fields?: Array<{ name: string }> }

function printResult (result: QueryResult, json: boolean): void {
  if (json) {
    console.log(JSON.stringify({ command: result.command, rowCount: result.rowCount, rows: result.rows }))
    return
  }
  if (result.fields !== undefined && result.fields.length > 0) {
    const names = result.fields.map((field) => field.name)
    console.log(table(names, result.rows.map((row) => names.map((name) => {
      const value = row[name]
      return value === null ? 'null' : typeof value === 'object' ? JSON.stringify(value) : String(value)
    }))))
  }
  console.log(`${result.command}${result.rowCount === null ? '' : ` ${result.rowCount}`}`)
}

/** `doctor` and `run`: finding and repairing drift, and acting inside one tenant's database. */
export function maintenanceCommands (program: Command, action: Action): void {
  program.command('doctor')
    .description('find databases and roles the catalog does not know, and catalog entries whose database is missing or that were left half-made; --fix repairs them')
    .option('--fix', 'drop orphans and the tenants left half-made, half-dropped or without a database')
    .option('--json', 'print JSON')
    .action(action(async (options: { fix?: boolean, json?: boolean }) => await withSilo(async (silo) => {
      const deps = await doctorDeps(silo)
      const report = await diagnose(deps)
      const repaired = options.fix === true ? await repair(deps, report) : undefined
      if (options.json === true) {
        console.log(JSON.stringify({ report, healthy: isHealthy(report), ...(repaired === undefined ? {} : { repaired }) }, null, 2))
      } else {
        const list = (items: string[]): string => items.length === 0 ? 'none' : items.join(', ')
        console.log(`orphan databases: ${list(report.orphanDatabases)}`)
        console.log(`orphan roles: ${list(report.orphanRoles)}`)
        console.log(`tenants without a database: ${list(report.missingDatabases)}`)
        console.log(`tenants left half-done: ${list(report.stuck.map((entry) => `${entry.slug} (${entry.status})`))}`)
        if (repaired !== undefined) {
          console.log(`dropped: ${list([...repaired.dropped.tenants.map((slug) => `tenant ${slug}`), ...repaired.dropped.databases.map((db) => `database ${db}`), ...repaired.dropped.roles.map((role) => `role ${role}`)])}`)
          for (const skipped of repaired.skipped) console.log(`skipped ${skipped.slug}: ${skipped.reason}`)
        } else if (!isHealthy(report)) {
          console.log('run `tenants doctor --fix` to repair')
        }
      }
      // Healthy, or every problem repaired: success. Problems left: exit 1.
      return isHealthy(report) || (repaired !== undefined && repaired.skipped.length === 0)
    })))

  program.command('run <slug> [sql...]')
    .description("run SQL in one tenant's database only, as the tenant's role (e.g. run acme -- \"select count(*) from articles\")")
    .option('--file <path>', 'read the SQL from a file')
    .option('--json', 'print results as JSON lines')
    .action(action(async (slug: string, sqlParts: string[], options: { file?: string, json?: boolean }) => {
      assertSlug(slug)
      if (options.file !== undefined && sqlParts.length > 0) throw new UsageError('give SQL or --file, not both')
      const sql = options.file !== undefined ? await readFile(options.file, 'utf8') : sqlParts.join(' ')
      if (sql.trim() === '') throw new UsageError('no SQL to run')
      return await withSilo(async (silo) => {
        const tenant = await silo.catalog.tenantBySlug(slug)
        if (tenant === null) throw tenantNotFoundBySlug(slug)
        const results = await silo.migrator.withDatabase(tenant, async (db) => {
          // Straight to the driver: knex.raw would read `?` in the SQL as a binding.
          const connection = await db.client.acquireConnection() as { query: (text: string) => Promise<QueryResult | QueryResult[]> }
          try {
            const raw = await connection.query(sql)
            return Array.isArray(raw) ? raw : [raw]
          } finally {
            await db.client.releaseConnection(connection)
          }
        })
        for (const result of results) printResult(result, options.json === true)
        return true
      })
    }))
}
