import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import type { Silo } from '../silo.js'
import type { DoctorDeps, DoctorPlan, DoctorReport, DoctorRepair } from '../lifecycle/doctor.js'
import { assertSlug } from '../lifecycle/tenant-names.js'
import { UsageError, type Action } from './usage.js'
import { withSilo } from './open-silo.js'
import { table } from './output.js'

const doctorDeps = (silo: Silo): DoctorDeps => ({
  catalog: silo.catalog,
  servers: silo.servers,
  provisioner: silo.provisioner,
  prefix: silo.config.tenantDbPrefix
})

const list = (items: string[]): string => items.length === 0 ? 'none' : items.join(', ')

function printReport (report: DoctorReport): void {
  console.log(`catalog ${report.catalog.database} (id ${report.catalog.id})`)
  if (report.unreachableServers.length > 0) console.log(`servers that did not answer, not checked: ${list(report.unreachableServers)}`)
  console.log(`orphan databases: ${list(report.orphanDatabases)}`)
  console.log(`orphan roles: ${list(report.orphanRoles)}`)
  console.log(`tenants without a database: ${list(report.missingDatabases)}`)
  console.log(`attached databases not answering (never removed by --fix): ${list(report.attachedUnreachable)}`)
  console.log(`tenants left half-done: ${list(report.stuck.map((entry) => `${entry.slug} (${entry.status})`))}`)
  console.log(`moves interrupted: ${list(report.interruptedMoves.map((move) => `${move.slug} (${move.from} → ${move.to}, ${move.phase})`))}`)
  console.log(`tenant objects without this catalog's mark: ${list(report.unmarked.map((entry) => `${entry.type} ${entry.name}`))}`)
  for (const entry of report.notOurs) console.log(`not ours, never touched: ${entry.type} ${entry.name}: ${entry.reason}`)
  for (const entry of report.exposed) {
    console.log(`warning: every tenant role can reach database ${entry.database} (${entry.privileges.join(', ')} granted to PUBLIC)` +
      (entry.hardenable ? '; `tenants harden` closes it' : '; not Silo\'s: revoke it there if tenants must not reach it'))
  }
}

function drops (drop: DoctorPlan['drop']): string[] {
  return [
    ...drop.tenants.map((slug) => `tenant ${slug} (its database is missing)`),
    ...drop.databases.map((name) => `database ${name}`),
    ...drop.roles.map((name) => `role ${name}`)
  ]
}

function printRepair (repaired: DoctorRepair, confirmed: boolean, nothingPlanned: boolean): void {
  const done = [
    ...repaired.dropped.tenants.map((slug) => `tenant ${slug}`),
    ...repaired.dropped.databases.map((name) => `database ${name}`),
    ...repaired.dropped.roles.map((name) => `role ${name}`)
  ]
  console.log(`removed or dropped: ${list(done)}`)
  console.log(`marked as this catalog's: ${list(repaired.marked.map((entry) => `${entry.type} ${entry.name}`))}`)
  console.log(`moves undone or finished: ${list(repaired.moves)}`)
  for (const skipped of repaired.skipped) console.log(`skipped ${skipped.name}: ${skipped.reason}`)
  const pending = drops(repaired.unconfirmed)
  if (!confirmed && pending.length > 0) {
    console.log(`will drop, with --yes: ${pending.join(', ')}`)
    console.log('nothing was dropped: run `tenants doctor --fix --yes` to drop these')
  } else if (!confirmed && nothingPlanned) {
    console.log('nothing to repair')
  }
}

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
    .description("compare the server with the catalog: this catalog's databases and roles it does not know, tenants whose database is missing or left half-made; --fix repairs")
    .option('--fix', 'repair half-made tenants and missing marks at once; show the drops it would make')
    .option('--yes', 'with --fix: also drop the orphans and remove tenants whose database is missing')
    .option('--json', 'print the report, the plan and what was done as JSON')
    .action(action(async (options: { fix?: boolean, yes?: boolean, json?: boolean }) => {
      if (options.yes === true && options.fix !== true) throw new UsageError('--yes confirms the drops of --fix: give both')
      const { diagnose, isHealthy, planIsEmpty, planRepair, repair } = await import('../lifecycle/doctor.js')
      return await withSilo(async (silo) => {
        const deps = doctorDeps(silo)
        const report = await diagnose(deps)
        const plan = planRepair(report)
        const confirmed = options.yes === true
        const repaired = options.fix === true ? await repair(deps, plan, { confirmed }) : undefined
        if (options.json === true) {
          console.log(JSON.stringify({ report, healthy: isHealthy(report), plan, ...(repaired === undefined ? {} : { repaired }) }, null, 2))
        } else {
          printReport(report)
          if (repaired !== undefined) printRepair(repaired, confirmed, planIsEmpty(plan))
          else if (!isHealthy(report)) {
            const pending = drops(plan.drop)
            if (pending.length > 0) console.log(`--fix --yes would drop: ${pending.join(', ')}`)
            console.log('run `tenants doctor --fix` to repair what is safe and see the rest; `--fix --yes` drops')
          }
        }
        // Healthy, or every problem repaired: success. Problems left (unconfirmed drops included): exit 1.
        if (isHealthy(report)) return true
        if (repaired === undefined) return false
        return repaired.skipped.length === 0 && drops(repaired.unconfirmed).length === 0
      })
    }))

  program.command('harden')
    .description('close PostgreSQL\'s own databases (postgres, template1) to PUBLIC, so a tenant role reaches its own database only')
    .option('--yes', 'carry it out (without it, show what would change)')
    .option('--json', 'print the plan as JSON')
    .action(action(async (options: { yes?: boolean, json?: boolean }) => await withSilo(async (silo) => {
      const { harden, planHardening } = await import('../lifecycle/server-hardening.js')
      const plan = await planHardening(silo.admin.knex)
      if (options.yes === true && plan.revoke.length > 0) await harden(silo.admin.knex, plan)
      const applied = options.yes === true
      if (options.json === true) {
        console.log(JSON.stringify({ plan, applied }, null, 2))
      } else if (plan.revoke.length === 0) {
        console.log('nothing to do: no database of PostgreSQL\'s own is open to PUBLIC')
      } else {
        for (const exposure of plan.revoke) {
          console.log(`${applied ? 'revoked' : 'will revoke'} ${exposure.privileges.join(', ')} on database ${exposure.database} from PUBLIC`)
        }
        for (const { role, database } of plan.losing) console.log(`${applied ? 'lost' : 'will lose'} CONNECT on ${database}: role ${role} (GRANT CONNECT ON DATABASE ${database} TO ${role} gives it back)`)
        if (!applied) console.log('nothing was changed: run `tenants harden --yes` to do it')
      }
      return applied || plan.revoke.length === 0
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
        const results = await silo.withTenant(slug, async (db) => {
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
