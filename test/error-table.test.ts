import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from './helpers/tap.js'
import * as sqlstate from '../src/db/sqlstate.js'
import * as errors from '../src/errors.js'
import { ERRORS, ERROR_CODES, SiloError, type ErrorCode } from '../src/errors.js'
import { classifyDatabaseError, connectionLost } from '../src/tenancy/database-errors.js'
import { CONTRACT_CODES } from './helpers/contract.js'
import { root } from './helpers/paths.js'

// The one error table (src/errors.ts ERRORS), checked against itself, against every factory and
// throw site in src/, and against README.md's error table, so that a code keeps one status and the
// README and the code cannot drift apart. No database: these are facts of the source.

/** README.md's "### Errors" table as code → statuses (a row may pair `413 / 415` with two codes). */
function readmeTable (): Map<string, number[]> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = readme.split(/^### Errors$/m)[1]
  if (section === undefined) throw new Error('README.md has no "### Errors" section')
  const rows = section.split('\n\n').find((block) => block.trimStart().startsWith('| situation'))
  if (rows === undefined) throw new Error('README.md\'s "### Errors" section has no table')
  const table = new Map<string, number[]>()
  for (const row of rows.trim().split('\n').slice(2)) {
    const cells = row.split('|').slice(1, -1).map((cell) => cell.trim())
    if (cells.length !== 3) throw new Error(`README error table row without three cells: ${row}`)
    const statuses = [...(cells[1] ?? '').matchAll(/\b[1-5]\d\d\b/g)].map((match) => Number(match[0]))
    const codes = [...(cells[2] ?? '').matchAll(/`([A-Z_]+)`/g)].map((match) => match[1] ?? '')
    if (statuses.length === 0 || codes.length === 0) throw new Error(`README error table row without a status or a code: ${row}`)
    if (statuses.length !== 1 && statuses.length !== codes.length) throw new Error(`README error table row pairs ${statuses.length} statuses with ${codes.length} codes: ${row}`)
    codes.forEach((code, i) => {
      const status = statuses.length === 1 ? statuses[0] : statuses[i]
      table.set(code, [...(table.get(code) ?? []), status ?? 0])
    })
  }
  return table
}

function sourceFiles (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return name.endsWith('.ts') ? [path] : []
  })
}

t.test('every code in the table has one HTTP error status, and a Retry-After only with a 503', async (t) => {
  t.ok(ERROR_CODES.length > 0)
  for (const code of ERROR_CODES) {
    const entry: { status: number, retryAfter?: number } = ERRORS[code]
    t.ok(Number.isInteger(entry.status) && entry.status >= 400 && entry.status <= 599, `${code}: status ${entry.status} is 400-599`)
    if (entry.retryAfter !== undefined) {
      t.equal(entry.status, 503, `${code}: a Retry-After only with a 503`)
      t.ok(Number.isInteger(entry.retryAfter) && entry.retryAfter > 0, `${code}: Retry-After ${entry.retryAfter} is a positive integer`)
    }
  }
  t.equal(ERRORS.TENANT_UNAVAILABLE.status, 503, 'TENANT_UNAVAILABLE is an outage: 503')
  t.equal(ERRORS.TENANT_STATE_CONFLICT.status, 409, 'a tenant status that refuses an admin operation is a conflict: 409')
})

t.test('SiloError takes its status and default Retry-After from the table; a stack only for a 5xx', async (t) => {
  for (const code of ERROR_CODES) {
    const error = new SiloError(code, 'message')
    const entry: { status: number, retryAfter?: number } = ERRORS[code]
    t.equal(error.statusCode, entry.status, `${code}: status`)
    t.equal(error.retryAfter, entry.retryAfter, `${code}: Retry-After`)
    const frames = (error.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at ')).length
    if (entry.status < 500) t.equal(frames, 0, `${code}: no stack captured for a ${entry.status}`)
    else t.ok(frames > 0, `${code}: a ${entry.status} keeps its stack`)
  }
  t.equal(new SiloError('TENANT_BUSY', 'm', { retryAfter: 9 }).retryAfter, 9, 'a throw site may still override the Retry-After')
})

t.test('every error factory in src/errors.ts yields its code with the status of the table', async (t) => {
  const notFactories = new Set(['SiloError', 'isSiloError', 'statusOf', 'retryAfterOf'])
  const factories = Object.entries(errors).filter(([name, value]) => typeof value === 'function' && !notFactories.has(name))
  t.ok(factories.length >= 10, `${factories.length} factories`)
  for (const [name, factory] of factories) {
    const error: unknown = (factory as (...args: unknown[]) => unknown)('x', 'y')
    if (!(error instanceof SiloError)) {
      t.fail(`${name} did not return a SiloError`)
      continue
    }
    t.equal(error.statusCode, ERRORS[error.code].status, `${name}: ${error.code} ${error.statusCode}`)
  }
})

t.test('no throw site in src/ chooses a status: SiloError is built from a code alone', async (t) => {
  const offenders: string[] = []
  for (const file of sourceFiles(join(root, 'src'))) {
    const text = readFileSync(file, 'utf8')
    for (const match of text.matchAll(/new SiloError\(\s*'([A-Z_]+)'\s*,\s*(\d{3})\b/g)) offenders.push(`${file.slice(root.length + 1)}: ${match[1]} ${match[2]}`)
  }
  t.same(offenders, [])
})

t.test("README.md's error table lists exactly the codes of the table, with the same statuses", async (t) => {
  const readme = readmeTable()
  t.same([...readme.keys()].sort(), [...ERROR_CODES].sort(), 'the same codes')
  for (const [code, statuses] of readme) {
    t.same(statuses, [ERRORS[code as ErrorCode]?.status], `${code}: one row, with the status of the table`)
  }
})

t.test("the fuzz tests' contract codes have the statuses of the table", async (t) => {
  for (const [code, status] of Object.entries(CONTRACT_CODES)) {
    t.equal(status, ERRORS[code as ErrorCode]?.status, code)
  }
})

const pgError = (code: string, severity = 'ERROR'): Error => Object.assign(new Error(`sqlstate ${code}`), { code, severity })

t.test('the sqlstate predicates classify errors by their SQLSTATE', async (t) => {
  t.ok(sqlstate.isUniqueViolation(pgError('23505')))
  t.notOk(sqlstate.isUniqueViolation(pgError('23503')), 'a foreign key violation is not a unique violation')
  t.ok(sqlstate.isDuplicateDatabase(pgError('42P04')))
  t.ok(sqlstate.isDuplicateObject(pgError('42710')))
  t.notOk(sqlstate.isDuplicateObject(pgError('42P04')))
  t.ok(sqlstate.isUndefinedTable(pgError('42P01')))
  t.notOk(sqlstate.isUndefinedTable(pgError('42P04')))
  t.ok(sqlstate.isUndefinedObject(pgError('42704')))
  t.ok(sqlstate.isUndefinedDatabase(pgError('3D000')))
  t.ok(sqlstate.isConnectionException(pgError('08006')))
  t.ok(sqlstate.isConnectionException(pgError('08P01')))
  t.notOk(sqlstate.isConnectionException(pgError('23505')))
  t.ok(sqlstate.isSessionEnded(pgError('57P01')))
  t.ok(sqlstate.isSessionEnded(pgError('57P04')), 'database dropped')
  t.notOk(sqlstate.isSessionEnded(pgError('57014')), 'a cancelled statement does not end the session')
  for (const code of ['08001', '53300', '57P01', '57P02', '57P03', '3D000', '28000', '28P01']) t.ok(sqlstate.isUnavailable(pgError(code)), `${code}: unavailable`)
  for (const code of ['23505', '42P01', '22P02', '57014', '40001']) t.notOk(sqlstate.isUnavailable(pgError(code)), `${code}: not about availability`)
  for (const value of [null, undefined, 'x', 42, {}, { code: 23505 }, new Error('no code')]) {
    t.notOk(sqlstate.isUniqueViolation(value), `${String(JSON.stringify(value))} is no SQLSTATE`)
    t.equal(sqlstate.sqlStateOf(value), undefined)
  }
  t.equal(sqlstate.SQLSTATE.UNIQUE_VIOLATION, '23505')
})

t.test('the request path turns unavailability into the contract 503s, and leaves the rest alone', async (t) => {
  t.match(classifyDatabaseError(pgError('08006')), { code: 'TENANT_UNAVAILABLE', statusCode: 503, retryAfter: 5 })
  t.match(classifyDatabaseError(pgError('28P01')), { code: 'TENANT_UNAVAILABLE', statusCode: 503 })
  t.match(classifyDatabaseError(pgError('55000', 'FATAL')), { code: 'TENANT_UNAVAILABLE' }, 'any FATAL ends the session')
  t.match(classifyDatabaseError(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })), { code: 'TENANT_UNAVAILABLE' })
  t.match(classifyDatabaseError(Object.assign(new Error('timeout'), { name: 'KnexTimeoutError' })), { code: 'TENANT_BUSY', statusCode: 503, retryAfter: 1 })
  t.equal(classifyDatabaseError(pgError('23505')), null)
  t.equal(classifyDatabaseError(pgError('42P01')), null)
  t.ok(connectionLost(pgError('57P01')))
  t.ok(connectionLost(pgError('08006')))
  t.notOk(connectionLost(pgError('23505')))
})
