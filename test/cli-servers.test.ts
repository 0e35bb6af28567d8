// `tenants servers ...` and `create --server`: the CLI over the server registry, spawned as a
// process, against two real servers: DATABASE_URL's (`default`) and an embedded one of this file's
// own. Every output of the file is kept, and none may carry a password.
import t from './helpers/tap.js'
import type { Test } from 'tap'
import pg from 'pg'
import { loadConfig } from '../src/config.js'
import { openSilo } from '../src/silo.js'
import { runCli, type CliResult } from './helpers/cli.js'
import { roleUrl, secondServer, SERVER_PORT_SQL } from './helpers/servers.js'
import { dropTestDatabases, testEnv } from './helpers/silo.js'

const env = testEnv()
const config = loadConfig(env, { env: false, dotenv: false })
t.teardown(async () => { await dropTestDatabases(config) })
const second = await secondServer(t)
// Opened before any CLI runs, so the catalog exists when several start at once; it only reads the catalog.
const silo = await openSilo(config)
t.teardown(async () => { await silo.close() })
const prefix = config.tenantDbPrefix

const secondPassword = decodeURIComponent(new URL(second.url).password)
const secretsSeen: string[] = [String(env.SECRET_KEY), secondPassword, encodeURIComponent(secondPassword)]
const outputs: CliResult[] = []
const run = async (...args: string[]): Promise<CliResult> => {
  const result = await runCli(args, env)
  outputs.push(result)
  return result
}
/** Runs a command with `input` on its standard input. */
const runWithInput = async (input: string, ...args: string[]): Promise<CliResult> => {
  const result = await runCli(args, env, input)
  outputs.push(result)
  return result
}
/** Runs independent commands at once; one result per command, in order. */
const runAll = async <const C extends ReadonlyArray<readonly string[]>>(commands: C): Promise<{ -readonly [K in keyof C]: CliResult }> =>
  await Promise.all(commands.map(async (args) => await run(...args))) as { -readonly [K in keyof C]: CliResult }

const serverNames = async (): Promise<string[]> => (await silo.catalog.servers.list()).map((server) => server.name)
const serverOf = async (slug: string): Promise<string | undefined> => (await silo.catalog.tenantBySlug(slug))?.server.name
const onSecond = async (sql: string, values: unknown[] = []): Promise<Array<Record<string, unknown>>> => {
  const client = new pg.Client({ connectionString: second.url })
  await client.connect()
  try {
    return (await client.query(sql, values)).rows
  } finally {
    await client.end()
  }
}
const databasesOnSecond = async (): Promise<unknown[]> =>
  (await onSecond('select datname from pg_database where datname like $1 order by datname', [`${prefix}%`])).map((row) => row.datname)
/** A command's refusal: exit code, nothing on stdout, one line on stderr. */
const refused = (t: Test, result: CliResult, code: number, message: RegExp, what: string): void => {
  t.equal(result.code, code, `${what}: exit ${code}`)
  t.match(result.stderr, message, `${what}: says why`)
  t.equal(result.stderr.trimEnd().split('\n').length, 1, `${what}: in one line`)
  t.equal(result.stdout, '', `${what}: nothing on stdout`)
}
/** The tenant passwords the catalog holds: no output may carry them either. */
const notePasswords = async (...slugs: string[]): Promise<void> => {
  for (const slug of slugs) {
    const tenant = await silo.catalog.tenantBySlug(slug)
    if (tenant !== null) secretsSeen.push(tenant.database.password)
  }
}

t.test('servers add registers a server that answers; servers list shows it, probed', async (t) => {
  const added = await run('servers', 'add', 'eu-2', '--url', second.url, '--weight', '5', '--max-tenants', '50', '--budget', '20')
  t.equal(added.code, 0, added.stderr)
  t.match(added.stdout, /^added server eu-2 \(PostgreSQL \d+(\.\d+)*, weight 5, at most 50 tenants, budget 20 connections\)\n$/)
  t.same(await serverNames(), ['default', 'eu-2'])

  const [json, text] = await runAll([['servers', 'list', '--json'], ['servers', 'list']])
  t.equal(json.code, 0, json.stderr)
  const views = JSON.parse(json.stdout) as Array<Record<string, unknown>>
  t.match(views, [
    { name: 'default', status: 'active', tenants: 0, reachable: true, serverVersion: /^\d+/ },
    {
      name: 'eu-2',
      status: 'active',
      tenants: 0,
      maxTenants: 50,
      weight: 5,
      connectionBudget: 20,
      tenantHost: null,
      tenantPort: null,
      reachable: true,
      serverVersion: /^\d+/,
      tenantBackends: 0,
      tenantBytes: 0
    }
  ])
  t.equal(views.length, 2)
  t.notOk(json.stdout.includes('postgres://'), 'no admin URL in the view')
  t.equal(text.code, 0, text.stderr)
  const lines = text.stdout.trimEnd().split('\n')
  t.match(lines[0], /^NAME\s+STATUS\s+TENANTS\s+MAX\s+WEIGHT\s+REACHABLE\s+VERSION\s+BACKENDS\s+SIZE$/)
  t.match(lines[1], /^default\s+active\s+0\s+-\s+1\s+yes\s+\d\S*\s+\d+\s+\d/)
  t.match(lines[2], /^eu-2\s+active\s+0\s+50\s+5\s+yes\s+\d\S*\s+0\s+0 B$/)
})

t.test('servers list shows a server that does not answer as unreachable, without failing', async (t) => {
  await second.stop()
  try {
    const [json, text] = await runAll([['servers', 'list', '--json'], ['servers', 'list']])
    t.equal(json.code, 0, json.stderr)
    t.match(JSON.parse(json.stdout), [{ name: 'default', reachable: true }, { name: 'eu-2', reachable: false, tenantBackends: null, tenantBytes: null, serverVersion: /^\d+/ }])
    t.equal(text.code, 0, text.stderr)
    t.match(text.stdout, /^eu-2\s+active\s+0\s+50\s+5\s+no\s+\d\S*\s+-\s+-$/m, 'what the probe could not tell is -')
  } finally {
    await second.start()
  }
})

t.test('servers add refuses what cannot serve, and records nothing', async (t) => {
  const noRights = await roleUrl(second.url, 'silo_cli_no_rights', 'no-rights-pw-cli-1', 'NOCREATEDB NOCREATEROLE')
  const wrongPassword = new URL(second.url)
  wrongPassword.password = 'wrong-pw-cli-2'
  secretsSeen.push('no-rights-pw-cli-1', 'wrong-pw-cli-2', 'unreachable-pw-cli-3', 'malformed-pw-cli-4', 'malformed-pw-cli-5', 'name-pw-cli-6', 'option-pw-cli-7')
  const add = (name: string, url: string, ...more: string[]): string[] => ['servers', 'add', name, '--url', url, ...more]
  const cases: Array<[string[], number, RegExp]> = [
    [add('far', 'postgres://silo:unreachable-pw-cli-3@127.0.0.1:1/postgres'), 1, /^tenants: Server far: nothing answers as PostgreSQL at 127\.0\.0\.1:1$/m],
    [add('wrong', wrongPassword.toString()), 1, /^tenants: Server wrong: the login of role postgres at 127\.0\.0\.1:\d+ was refused/],
    [add('weak', noRights), 1, /^tenants: Server weak: role silo_cli_no_rights may not create databases and roles there/],
    [add('web', 'http://user:malformed-pw-cli-4@example.com/db'), 1, /^tenants: The admin URL must start with postgres:\/\//],
    [add('broken', 'postgres://user:malformed-pw-cli-5@host:notaport/db'), 1, /^tenants: The admin URL is not a URL/],
    [add('eu-2', second.url), 1, /^tenants: A server named eu-2 is registered already$/m],
    [add('again', second.url), 1, /^tenants: That PostgreSQL server is registered already, as eu-2$/m],
    [add('default-again', String(env.DATABASE_URL)), 1, /^tenants: That PostgreSQL server is registered already, as default$/m],
    [add('Bad_Name', second.url), 1, /^tenants: Invalid server name \(not repeated\): use 2-40 characters/],
    // An admin URL given in the name's place is refused without being repeated.
    [add('postgres://u:name-pw-cli-6@h/db', second.url), 1, /^tenants: Invalid server name \(not repeated: it looks like a URL/],
    // Commander's usage errors quote the option; an unknown one with a URL is quoted without its password.
    [add('eu-3', second.url, '--admin-url=postgres://u:option-pw-cli-7@h/db'), 1, /^error: unknown option '--admin-url=postgres:\/\/u:\*\*\*@h\/db'$/m],
    [add('eu-3', second.url, '--weight', '0'), 1, /^error: option '--weight <w>' argument '0' is invalid\. must be an integer from 1 to 1000$/m],
    [add('eu-3', second.url, '--max-tenants', 'many'), 1, /--max-tenants <n>' argument 'many' is invalid/],
    [add('eu-3', second.url, '--tenant-port', '70000'), 1, /--tenant-port <port>' argument '70000' is invalid/],
    [add('eu-3', second.url, '--budget', '1.5'), 1, /--budget <n>' argument '1\.5' is invalid/],
    [['servers', 'add', 'eu-3'], 1, /^error: required option '--url <admin-url>' not specified$/m]
  ]
  // Refusals change nothing, so they run at once; their results are checked in order.
  const results = await runAll(cases.map(([args]) => args))
  cases.forEach(([args, code, message], i) => {
    const result = results[i]
    if (result === undefined) return
    refused(t, result, code, message, args.slice(1, 3).join(' ') + (args.length > 5 ? ` ${args.slice(5).join(' ')}` : ''))
  })
  t.same(await serverNames(), ['default', 'eu-2'], 'nothing was recorded')
})

t.test('create --server pins a tenant; placement spreads by weight and skips a draining server', async (t) => {
  const [pinned, home, unknown] = await runAll([
    ['create', 'pinned', '--domain', 'pinned.test', '--server', 'eu-2'],
    ['create', 'home', '--domain', 'home.test', '--server', 'default'],
    ['create', 'lost', '--domain', 'lost.test', '--server', 'nowhere']
  ])
  t.equal(pinned.code, 0, pinned.stderr)
  t.match(pinned.stdout, /^created pinned on server eu-2 \(database \S+pinned, schema \S+\) at pinned\.test$/m)
  t.equal(home.code, 0, home.stderr)
  t.match(home.stdout, /^created home on server default /)
  refused(t, unknown, 1, /^tenants: No server named nowhere$/m, 'an unknown server')
  t.equal(await silo.catalog.tenantBySlug('lost'), null, 'the refused tenant was not made')

  // default holds 1 tenant for weight 1, eu-2 1 for weight 5: an unpinned tenant goes to eu-2.
  const free = await run('create', 'free', '--domain', 'free.test')
  t.equal(free.code, 0, free.stderr)
  t.match(free.stdout, /^created free on server eu-2 /)
  t.same(await Promise.all(['pinned', 'home', 'free'].map(serverOf)), ['eu-2', 'default', 'eu-2'])
  await notePasswords('pinned', 'home', 'free')

  // Draining changes no tenant: it runs beside the reads.
  const [listed, table, port, drained] = await runAll([['list', '--json'], ['list'], ['run', 'pinned', '--json', '--', SERVER_PORT_SQL], ['servers', 'drain', 'eu-2']])
  t.equal(listed.code, 0, listed.stderr)
  t.same((JSON.parse(listed.stdout) as Array<{ slug: string, server: string }>).map(({ slug, server }) => [slug, server]).sort(),
    [['free', 'eu-2'], ['home', 'default'], ['pinned', 'eu-2']], 'list --json names each tenant\'s server')
  t.match(table.stdout, /^SLUG\s+STATUS\s+SERVER\s+SCHEMA\s+DATABASE\s+DOMAINS$/m)
  t.match(table.stdout, /^pinned\s+active\s+eu-2\s+\S+\s+\S+pinned\s+pinned\.test$/m)
  t.match(table.stdout, /^home\s+active\s+default\s+/m)
  t.equal(port.code, 0, port.stderr)
  t.same(JSON.parse(port.stdout).rows, [{ port: second.port }], "the tenant's own connection reaches the second server")
  t.equal(drained.code, 0, drained.stderr)
  t.equal(drained.stdout, 'eu-2 is draining\n')
  const [blocked, elsewhere, list] = await runAll([
    ['create', 'blocked', '--domain', 'blocked.test', '--server', 'eu-2'],
    ['create', 'elsewhere', '--domain', 'elsewhere.test'],
    ['servers', 'list']
  ])
  refused(t, blocked, 1, /^tenants: Server eu-2 takes no new tenants: it is draining$/m, 'a pinned create on a draining server')
  t.equal(await silo.catalog.tenantBySlug('blocked'), null, 'the refused tenant was not made')
  t.equal(elsewhere.code, 0, elsewhere.stderr)
  t.match(elsewhere.stdout, /^created elsewhere on server default /, 'an unpinned create goes to the active server, though eu-2 has fewer tenants per weight')
  t.equal(await serverOf('elsewhere'), 'default')
  await notePasswords('elsewhere')
  t.match(list.stdout, /^eu-2\s+draining\s+2\s+50\s+5\s+yes\s/m, 'servers list shows it draining, with its tenants')

  const [resumed, unknownDrain, unknownResume, badName] = await runAll([
    ['servers', 'resume', 'eu-2'], ['servers', 'drain', 'nope'], ['servers', 'resume', 'nope'], ['servers', 'drain', 'Nope!']
  ])
  t.equal(resumed.code, 0, resumed.stderr)
  t.equal(resumed.stdout, 'eu-2 is active\n')
  refused(t, unknownDrain, 1, /^tenants: No server named nope$/m, 'drain of an unknown server')
  refused(t, unknownResume, 1, /^tenants: No server named nope$/m, 'resume of an unknown server')
  refused(t, badName, 1, /^tenants: Invalid server name \(not repeated\)/, 'drain of an invalid name')
  t.equal((await silo.catalog.servers.byName('eu-2'))?.status, 'active')
})

t.test('servers remove is refused while the server holds tenants, and forgets it once they are dropped', async (t) => {
  const [inUse, theDefault, unknown] = await runAll([['servers', 'remove', 'eu-2'], ['servers', 'remove', 'default'], ['servers', 'remove', 'nope']])
  refused(t, inUse, 1, /^tenants: Server eu-2 holds 2 tenants; move or drop them first$/m, 'remove of a server with tenants')
  refused(t, theDefault, 1, /^tenants: The default server is the one of DATABASE_URL; it cannot be removed$/m, 'remove of default')
  refused(t, unknown, 1, /^tenants: No server named nope$/m, 'remove of an unknown server')
  t.same(await serverNames(), ['default', 'eu-2'], 'nothing was removed')
  t.ok((await databasesOnSecond()).length >= 2, 'its tenant databases are still there')

  for (const dropped of await runAll([['drop', 'pinned', '--yes'], ['drop', 'free', '--yes']])) t.equal(dropped.code, 0, dropped.stderr)
  const removed = await run('servers', 'remove', 'eu-2')
  t.equal(removed.code, 0, removed.stderr)
  t.equal(removed.stdout, 'removed server eu-2\n')
  t.same(await serverNames(), ['default'])
  t.same(await databasesOnSecond(), [], "nothing of this catalog's is left on it (its template went with it)")
  const [json, text, again] = await runAll([['servers', 'list', '--json'], ['servers', 'list'], ['servers', 'remove', 'eu-2']])
  t.same((JSON.parse(json.stdout) as Array<{ name: string }>).map((server) => server.name), ['default'])
  t.notMatch(text.stdout, /eu-2/, 'servers list no longer shows it')
  refused(t, again, 1, /^tenants: No server named eu-2$/m, 'removing it again')
})

t.test('servers add --url - reads the URL from standard input; a server that no longer answers can still be removed', async (t) => {
  const added = await runWithInput(`${second.url}\n`, 'servers', 'add', 'from-stdin', '--url', '-')
  t.equal(added.code, 0, added.stderr)
  t.match(added.stdout, /^added server from-stdin \(PostgreSQL /)
  refused(t, await runWithInput('', 'servers', 'add', 'empty', '--url', '-'), 1, /^tenants: --url - reads the admin URL from standard input, which was empty$/m, 'an empty standard input')
  await second.stop()
  t.teardown(async () => { await second.start() })
  const removed = await run('servers', 'remove', 'from-stdin')
  t.equal(removed.code, 0, removed.stderr)
  t.match(removed.stdout, /^removed server from-stdin; it did not answer/)
  await second.start()
  t.same(await serverNames(), ['default'])
})

t.test('--help for the servers commands, and create --server', async (t) => {
  const commands = [['servers', '--help'], ['servers', 'add', '--help'], ['servers', 'list', '--help'], ['servers', 'drain', '--help'],
    ['servers', 'resume', '--help'], ['servers', 'remove', '--help'], ['create', '--help'], ['--help']]
  const helps = await runAll(commands)
  commands.forEach((args, i) => {
    const help = helps[i]
    t.equal(help?.code, 0, args.join(' '))
    t.match(help?.stdout, /^Usage: tenants /, args.join(' '))
  })
  const [servers, add, , , , , create, program] = helps
  for (const command of ['add', 'list', 'drain', 'resume', 'remove']) t.match(servers?.stdout, new RegExp(`^  ${command} `, 'm'), `servers --help lists ${command}`)
  for (const option of ['--url <admin-url>', '--tenant-host <host>', '--tenant-port <port>', '--max-tenants <n>', '--weight <w>', '--budget <n>']) {
    t.ok(add?.stdout.includes(option), `servers add --help shows ${option}`)
  }
  t.match(create?.stdout, /--server <name>/)
  t.match(program?.stdout, /^ {2}servers /m)
})

t.test('no output ever carried a password or the secret key', async (t) => {
  t.ok(outputs.length > 45, `${outputs.length} commands checked`)
  const leaks = outputs.filter((output) => secretsSeen.some((secret) => output.stdout.includes(secret) || output.stderr.includes(secret)))
  t.same(leaks, [])
  t.notOk(outputs.some((output) => output.stdout.includes(second.url) || output.stderr.includes(second.url)), 'nor an admin URL')
})
