// Attached tenants: databases Silo did not create, served by their URL. Two real servers:
// DATABASE_URL's (registered as `default`) and an embedded one this file starts and never
// registers, whose logins need their passwords. Attach, refusals (nothing recorded, no password
// in any message), schema conflicts, --no-migrate, detach and --drop-database, doctor, the
// admin API and the CLI.
import t from './helpers/tap.js'
import pg from 'pg'
import { diagnose, planRepair, repair, type DoctorDeps } from '../src/lifecycle/doctor.js'
import { migrateFleet } from '../src/lifecycle/fleet-migrator.js'
import { runCli, type CliResult } from './helpers/cli.js'
import { roleUrl, secondServer } from './helpers/servers.js'
import { createTenant, databaseUrl, testApp, testEnv } from './helpers/silo.js'

const token = 'attach-admin-token-0123456789'
const { silo, app } = await testApp(t, { ADMIN_TOKEN: token })
const auth = { authorization: `Bearer ${token}` }
const adminHost = silo.config.adminHost
const second = await secondServer(t)
const prefix = silo.config.tenantDbPrefix
const latest = await silo.migrator.latestVersion()

/** Runs SQL as the superuser of a server (`url`), optionally in another database. */
const sql = async <T extends pg.QueryResultRow = Record<string, unknown>>(url: string, text: string, values: unknown[] = [], database?: string): Promise<T[]> => {
  const target = new URL(url)
  if (database !== undefined) target.pathname = `/${database}`
  const client = new pg.Client({ connectionString: target.toString() })
  await client.connect()
  try {
    return (await client.query<T>(text, values)).rows
  } finally {
    await client.end()
  }
}
/** A database owned by a new login role (no superuser, no CREATEDB), on the server of `adminUrl`; the URL that logs in as it. */
const ownedDatabase = async (adminUrl: string, name: string, password: string): Promise<string> => {
  const url = new URL(await roleUrl(adminUrl, `${name}_owner`, password, 'NOSUPERUSER NOCREATEDB NOCREATEROLE'))
  await sql(adminUrl, `create database ${name} owner ${name}_owner`)
  url.pathname = `/${name}`
  return url.toString()
}
/** The URL of the `shop` database on the second server, as its owner. */
const shopUrl = (): string => {
  const url = new URL(second.url)
  url.username = 'shop_owner'
  url.password = 'shop-password-4711'
  url.pathname = '/shop'
  return url.toString()
}
const slugs = async (): Promise<string[]> => (await silo.catalog.listTenants()).map((tenant) => tenant.slug)
const refusal = async (promise: Promise<unknown>): Promise<{ code?: string, message: string }> =>
  await promise.then(() => ({ message: 'attached' }), (error: unknown) => error as { code?: string, message: string })

t.test('a database on a server that is not registered is attached: checked, migrated as its own role, served on its domain, its password sealed', async (t) => {
  const url = await ownedDatabase(second.url, 'shop', 'shop-password-4711')
  const tenant = await silo.attacher.attach({ slug: 'shop', url, domains: ['shop.test', 'www.shop.test'], name: 'The Shop' })
  t.match(tenant, { slug: 'shop', name: 'The Shop', status: 'active', attached: true, schemaManaged: true, server: null, schemaVersion: latest, databaseName: 'shop', databaseUser: 'shop_owner' })

  const [row] = await sql(databaseUrl(), 'select db_password, db_host, db_port, server_id from tenants where slug = $1', ['shop'], silo.config.catalogDatabase)
  t.notOk(String(row?.db_password).includes('shop-password-4711'), 'the password is sealed in the catalog')
  t.match(row, { db_host: '127.0.0.1', db_port: second.port, server_id: null })

  const created = await app.inject({ method: 'POST', url: '/articles', headers: { host: 'shop.test' }, payload: { title: 'Hello', body: 'from an attached database' } })
  t.equal(created.statusCode, 201, created.body)
  const there = await sql(second.url, 'select a.title, pg_get_userbyid(c.relowner) as owner from articles a, pg_class c where c.relname = \'articles\'', [], 'shop')
  t.same(there, [{ title: 'Hello', owner: 'shop_owner' }], 'the article is in the attached database, in a table its own role owns')

  const viewed = await app.inject({ method: 'GET', url: '/tenants/shop', headers: { host: adminHost, ...auth } })
  t.match(viewed.json(), { slug: 'shop', attached: true, schemaManaged: true, server: null, database: 'shop' })
  t.notOk(viewed.body.includes('shop-password-4711'))
})

t.test('a database on a registered server counts as that server\'s', async (t) => {
  const name = `${prefix}own_app`
  const url = await ownedDatabase(databaseUrl(), name, 'own-app-password-1')
  const tenant = await silo.attacher.attach({ slug: 'own-app', url, domains: ['own-app.test'] })
  t.match(tenant, { attached: true, server: 'default' })
  const record = await silo.catalog.tenantBySlug('own-app')
  t.equal(record?.server.name, 'default', 'its connections take slots of the default server\'s budget')
  const served = await app.inject({ method: 'GET', url: '/articles', headers: { host: 'own-app.test' } })
  t.equal(served.statusCode, 200, served.body)
})

t.test('refusals record nothing and never repeat the password', async (t) => {
  const before = await slugs()
  const good = new URL(await ownedDatabase(second.url, 'spare_app', 'good-password-77'))
  const wrongPassword = new URL(good)
  wrongPassword.password = 'wrong-password-88'
  const missing = new URL(good)
  missing.pathname = '/no_such_database'
  const made = await createTenant(silo, 'made')
  const madeRecord = await silo.catalog.tenantBySlug('made')
  const madeUrl = new URL(databaseUrl())
  madeUrl.username = made.databaseUser
  madeUrl.password = madeRecord?.database.password ?? ''
  madeUrl.pathname = `/${made.databaseName}`
  const catalogUrl = new URL(await roleUrl(databaseUrl(), `${prefix}peek`, 'peek-password-99', 'NOSUPERUSER'))
  await sql(databaseUrl(), `grant connect on database ${silo.config.catalogDatabase} to ${prefix}peek`)
  catalogUrl.pathname = `/${silo.config.catalogDatabase}`
  const superuser = new URL(second.url)
  superuser.pathname = '/spare_app'
  const secrets = ['good-password-77', 'wrong-password-88', 'unreachable-pw-66', 'peek-password-99', 'some-pw-55', 'pw-44', decodeURIComponent(new URL(second.url).password), madeRecord?.database.password ?? '']
  const cases: Array<[string, string, RegExp, string?]> = [
    [wrongPassword.toString(), 'DATABASE_UNUSABLE', /login of role spare_app_owner at 127\.0\.0\.1:\d+ was refused/],
    ['postgres://someone:unreachable-pw-66@127.0.0.1:1/app', 'DATABASE_UNUSABLE', /Nothing answers as PostgreSQL at 127\.0\.0\.1:1/],
    [missing.toString(), 'DATABASE_UNUSABLE', /database no_such_database does not exist/],
    [superuser.toString(), 'DATABASE_UNUSABLE', /is a superuser/],
    [madeUrl.toString(), 'DATABASE_TAKEN', /made by Silo/],
    [catalogUrl.toString(), 'DATABASE_TAKEN', /is a Silo catalog/],
    ['http://user:some-pw-55@example.com/db', 'VALIDATION_FAILED', /must start with postgres:\/\//],
    ['not a url with pw-44', 'VALIDATION_FAILED', /not a URL/],
    ['postgres://user:some-pw-55@127.0.0.1/db?sslkey=/etc/shadow', 'VALIDATION_FAILED', /may not name files/],
    [good.toString(), 'DOMAIN_TAKEN', /Domain shop\.test is taken/, 'shop.test'],
    [good.toString(), 'VALIDATION_FAILED', /is reserved/, adminHost]
  ]
  for (const [url, code, message, domain] of cases) {
    const error = await refusal(silo.attacher.attach({ slug: 'refused', url, domains: [domain ?? 'refused.test'] }))
    t.match(error, { code, message }, `${code}: ${message.source}`)
    for (const secret of secrets) t.notOk(error.message.includes(secret), `${code}: no password in the message`)
  }
  t.match(await refusal(silo.attacher.attach({ slug: 'shop', url: good.toString(), domains: ['other.test'] })), { code: 'SLUG_TAKEN' })
  t.match(await refusal(silo.attacher.attach({ slug: 'shop-again', url: shopUrl(), domains: ['again.test'] })),
    { code: 'DATABASE_TAKEN', message: /attached already/ }, 'the same database twice')
  // Its teardown drops the role before the catalog: the grant must go first.
  await sql(databaseUrl(), `revoke connect on database ${silo.config.catalogDatabase} from ${prefix}peek`)
  t.same(await slugs(), [...before, 'made'].sort(), 'nothing was recorded')
  t.same(await sql(second.url, 'select to_regclass(\'knex_migrations\') as present', [], 'spare_app'), [{ present: null }], 'nothing was made in the database')
  await silo.provisioner.drop('made')
})

t.test('a database whose own tables conflict with the tenant migrations is refused and left as it was; with migrate off it is served as it is', async (t) => {
  const url = await ownedDatabase(second.url, 'legacy', 'legacy-password-5')
  const asOwner = new pg.Client({ connectionString: url })
  await asOwner.connect()
  await asOwner.query('create table articles (id int primary key, note text)')
  await asOwner.query('insert into articles values (1, \'kept\')')
  await asOwner.end()

  const error = await refusal(silo.attacher.attach({ slug: 'legacy', url, domains: ['legacy.test'] }))
  t.match(error, { code: 'SCHEMA_CONFLICT', message: /articles.*already exists/ })
  t.notOk(error.message.includes('legacy-password-5'))
  t.equal(await silo.catalog.tenantBySlug('legacy'), null, 'nothing recorded')
  t.same(await sql(second.url, 'select * from articles', [], 'legacy'), [{ id: 1, note: 'kept' }], 'its table and row are as they were')
  t.same(await sql(second.url, 'select to_regclass(\'knex_migrations\') as a, to_regclass(\'knex_migrations_lock\') as b', [], 'legacy'), [{ a: null, b: null }], 'the migration tables are gone again')

  const attached = await silo.attacher.attach({ slug: 'legacy', url, domains: ['legacy.test'], migrate: false })
  t.match(attached, { attached: true, schemaManaged: false, schemaVersion: null, status: 'active' })
  // The admin API says so, so a reader (the console) does not take its null schema version for one never migrated.
  const viewed = await app.inject({ method: 'GET', url: '/tenants/legacy', headers: { host: adminHost, ...auth } })
  t.match(viewed.json(), { slug: 'legacy', attached: true, schemaManaged: false, schemaVersion: null })
  // The schema guard is on (SCHEMA_GUARD=strict): a managed tenant with no schema version would get 503.
  const served = await app.inject({ method: 'GET', url: '/tenant', headers: { host: 'legacy.test' } })
  t.equal(served.statusCode, 200, served.body)
  const [result] = await migrateFleet(silo.catalog, silo.migrator, ['legacy'], { direction: 'latest', concurrency: 1 })
  t.match(result, { slug: 'legacy', status: 'skipped', error: /its schema is its own/ })
  t.same(await sql(second.url, 'select * from articles', [], 'legacy'), [{ id: 1, note: 'kept' }], 'the fleet run left it alone')
})

t.test('doctor never calls an attached database an orphan or missing, never marks it, and --fix --yes keeps it', async (t) => {
  // Named with the tenant prefix, unmarked, on the server doctor inspects: exactly what doctor judges.
  const name = `${prefix}prefixed`
  const url = await ownedDatabase(databaseUrl(), name, 'prefixed-password-3')
  await silo.attacher.attach({ slug: 'prefixed', url, domains: ['prefixed.test'] })
  // On the server doctor inspects too, and gone from it: not a tenant "without a database" to remove.
  const gone = await ownedDatabase(databaseUrl(), `${prefix}gone`, 'gone-password-2')
  await silo.attacher.attach({ slug: 'gone', url: gone, domains: ['gone.test'] })
  await sql(databaseUrl(), `drop database ${prefix}gone with (force)`)

  const deps: DoctorDeps = { catalog: silo.catalog, servers: silo.servers, provisioner: silo.provisioner, prefix }
  const report = await diagnose(deps)
  t.same(report.attachedUnreachable, ['gone'], 'the attached database that is gone is reported')
  const named = [...report.orphanDatabases, ...report.orphanRoles, ...report.missingDatabases, ...report.unmarked.map((entry) => entry.name), ...report.notOurs.map((entry) => entry.name)]
  for (const object of [name, `${name}_owner`, 'own-app', `${prefix}own_app`, `${prefix}own_app_owner`, 'prefixed', 'gone', `${prefix}gone_owner`]) t.notOk(named.includes(object), `${object} is not judged as Silo's`)
  const plan = planRepair(report)
  t.same(plan.drop.tenants, [], 'no attached tenant is planned for removal')
  await repair(deps, plan, { confirmed: true })
  t.ok(await silo.catalog.tenantBySlug('prefixed'), 'still attached')
  t.ok(await silo.catalog.tenantBySlug('gone'), 'still attached, though its database is gone: it is not Silo\'s to forget')
  const [comments] = await sql(databaseUrl(), 'select shobj_description(d.oid, \'pg_database\') as database, shobj_description(r.oid, \'pg_authid\') as role from pg_database d, pg_roles r where d.datname = $1 and r.rolname = $2', [name, `${name}_owner`])
  t.same(comments, { database: null, role: null }, 'no mark was written on the attached database or its role')
  await silo.provisioner.drop('gone')
})

t.test('connection metrics carry the server: a registered one by name, an unregistered one by its address', async (t) => {
  const url = await ownedDatabase(second.url, 'fading', 'fading-password-1')
  await silo.attacher.attach({ slug: 'fading', url, domains: ['fading.test'] })
  await sql(second.url, 'drop database fading with (force)')
  const failed = await app.inject({ method: 'GET', url: '/articles', headers: { host: 'fading.test' } })
  t.equal(failed.statusCode, 503, 'its database is gone: 503')
  t.equal(failed.json().code, 'TENANT_UNAVAILABLE')
  const metrics = (await app.inject({ method: 'GET', url: '/metrics', headers: { host: adminHost, ...auth } })).body
  const address = `127.0.0.1:${second.port}`
  t.match(metrics, new RegExp(`silo_connection_failures_total\\{server="${address.replaceAll('.', '\\.')}"\\} [1-9]`), 'the failure, by address')
  t.match(metrics, new RegExp(`silo_connection_open_seconds_count\\{server="${address.replaceAll('.', '\\.')}"\\} [1-9]`), 'opens on the unregistered server (shop)')
  t.match(metrics, /silo_connection_open_seconds_count\{server="default"\} [1-9]/, 'opens on the default server (own-app)')
  t.notMatch(metrics, /silo_connection_failures_total\{server="default"\}/, 'no failure counted against the default server')
  await silo.provisioner.drop('fading')
})

t.test('drop detaches an attached tenant and keeps its database; --drop-database drops the database, never the role', async (t) => {
  const result = await silo.provisioner.drop('shop')
  t.same(result, { detached: true })
  t.equal(await silo.catalog.tenantBySlug('shop'), null)
  t.same(await sql(second.url, 'select title from articles', [], 'shop'), [{ title: 'Hello' }], 'its data stays')
  const notServed = await app.inject({ method: 'GET', url: '/articles', headers: { host: 'shop.test' } })
  t.equal(notServed.statusCode, 404, 'its domain is no longer served')

  const again = await silo.attacher.attach({ slug: 'shop-again', url: shopUrl(), domains: ['shop.test'] })
  t.equal(again.schemaVersion, latest, 'attached again, already migrated')
  const served = await app.inject({ method: 'GET', url: '/articles', headers: { host: 'shop.test' } })
  t.match(served.json(), { items: [{ title: 'Hello' }] }, 'its data is served again')

  const dropped = await app.inject({ method: 'DELETE', url: '/tenants/shop-again?dropDatabase=true', headers: { host: adminHost, ...auth } })
  t.equal(dropped.statusCode, 204, dropped.body)
  t.same(await sql(second.url, 'select datname from pg_database where datname = \'shop\''), [], 'the database is dropped')
  t.same(await sql(second.url, 'select rolname from pg_roles where rolname = \'shop_owner\''), [{ rolname: 'shop_owner' }], 'its role stays: Silo did not make it')
})

t.test('the admin API attaches, refusing with the contract\'s codes and never answering the URL', async (t) => {
  const url = await ownedDatabase(second.url, 'api_app', 'api-password-6')
  const wrong = new URL(url)
  wrong.password = 'api-wrong-7'
  const refused = await app.inject({ method: 'POST', url: '/tenants/attach', headers: { host: adminHost, ...auth }, payload: { slug: 'api-app', url: wrong.toString(), domains: ['api-app.test'] } })
  t.equal(refused.statusCode, 400)
  t.match(refused.json(), { code: 'DATABASE_UNUSABLE' })
  t.notOk(refused.body.includes('api-wrong-7'))
  const created = await app.inject({ method: 'POST', url: '/tenants/attach', headers: { host: adminHost, ...auth }, payload: { slug: 'api-app', url, domains: ['api-app.test'] } })
  t.equal(created.statusCode, 201, created.body)
  t.match(created.json(), { slug: 'api-app', attached: true, server: null, schemaVersion: latest })
  t.notOk(created.body.includes('api-password-6'))
  const unauthorized = await app.inject({ method: 'POST', url: '/tenants/attach', headers: { host: adminHost }, payload: { slug: 'x-app', url, domains: ['x.test'] } })
  t.equal(unauthorized.statusCode, 401)
  const docs = await app.inject({ method: 'GET', url: '/docs/json', headers: { host: adminHost } })
  t.ok(docs.json().paths['/tenants/attach']?.post, 'in the OpenAPI document')
})

t.test('reattach takes up a rotated password: checked first, nothing changed on a refusal, the pool replaced', async (t) => {
  const get = async (): Promise<{ status: number, code?: string }> => {
    const res = await app.inject({ method: 'GET', url: '/articles', headers: { host: 'api-app.test' } })
    return { status: res.statusCode, code: res.statusCode === 200 ? undefined : res.json().code }
  }
  const sealed = async (): Promise<unknown> => (await sql(databaseUrl(), 'select db_password from tenants where slug = $1', ['api-app'], silo.config.catalogDatabase))[0]?.db_password
  t.same(await get(), { status: 200, code: undefined })
  await sql(second.url, 'alter role api_app_owner password \'api-rotated-8\'')
  await sql(second.url, 'select pg_terminate_backend(pid) from pg_stat_activity where datname = \'api_app\'')
  t.same(await get(), { status: 503, code: 'TENANT_UNAVAILABLE' }, 'the old password no longer logs in')

  const before = await sealed()
  const url = new URL(second.url)
  url.username = 'api_app_owner'
  url.pathname = '/api_app'
  url.password = 'api-wrong-9'
  const refused = await app.inject({ method: 'POST', url: '/tenants/api-app/reattach', headers: { host: adminHost, ...auth }, payload: { url: url.toString() } })
  t.match({ status: refused.statusCode, code: refused.json().code }, { status: 400, code: 'DATABASE_UNUSABLE' })
  t.notOk(refused.body.includes('api-wrong-9'))
  t.equal(await sealed(), before, 'a refusal changes nothing')

  url.password = 'api-rotated-8'
  const done = await app.inject({ method: 'POST', url: '/tenants/api-app/reattach', headers: { host: adminHost, ...auth }, payload: { url: url.toString() } })
  t.equal(done.statusCode, 200, done.body)
  t.match(done.json(), { slug: 'api-app', attached: true, schemaVersion: latest })
  t.notOk(done.body.includes('api-rotated-8'))
  t.not(await sealed(), before, 'the new password is sealed in its place')
  t.same(await get(), { status: 200, code: undefined }, 'it serves again, on the new password')

  await createTenant(silo, 'native')
  t.match(await refusal(silo.attacher.reattach('native', url.toString())), { code: 'VALIDATION_FAILED', message: /made by Silo/ }, 'a tenant Silo made has no URL to change')
  t.match(await refusal(silo.attacher.reattach('nobody', url.toString())), { code: 'TENANT_NOT_FOUND' })
  await silo.provisioner.drop('native')
})

t.test('hostile URLs are a 4xx with a code, never a 5xx, and never echo their password', async (t) => {
  const hostile = [
    'postgres://u:fz-pw-0@127.0.0.1:99999/db', 'postgres://u:fz-pw-1@[::1/db', 'postgres://u:fz-pw-2@/db', 'postgres://u:fz-pw-3@127.0.0.1:0/db',
    'postgres://u:fz-pw-4@127.0.0.1:1/db?sslmode=bogus', 'postgres://u:fz-pw-5@127.0.0.1:1/db?sslrootcert=/etc/passwd', 'postgres://%zz:fz-pw-6@127.0.0.1:1/db',
    'postgres://u:fz-pw-7@127.0.0.1:1/db\u0000', `postgres://u:fz-pw-8@127.0.0.1:1/${'d'.repeat(1900)}`, 'postgres://u:fz-pw-9@127.0.0.1:1/db"; drop table tenants; --',
    'postgres://u@127.0.0.1:1/no-password-fz-10', 'postgresql://u:fz-pw-11@127.0.0.1:1', ' postgres://u:fz-pw-12@127.0.0.1:1/db', 'postgres://u:fz-pw-13@127.0.0.1:1/db?options=-c%20search_path%3Devil'
  ]
  for (const [i, url] of hostile.entries()) {
    const res = await app.inject({ method: 'POST', url: '/tenants/attach', headers: { host: adminHost, ...auth }, payload: { slug: 'hostile', url, domains: ['hostile.test'] } })
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${i}: ${res.statusCode} ${res.json().code}`)
    t.type(res.json().code, 'string')
    t.notOk(res.body.includes(`fz-pw-${i}`), `${i}: no password in the answer`)
  }
  t.equal(await silo.catalog.tenantBySlug('hostile'), null, 'nothing recorded')
})

t.test('the CLI attaches with the URL on standard input, and drop without --yes only detaches', async (t) => {
  const env = testEnv({ CATALOG_DATABASE: silo.config.catalogDatabase, TENANT_DB_PREFIX: prefix })
  const outputs: CliResult[] = []
  const run = async (args: string[], input?: string): Promise<CliResult> => {
    const result = await runCli(args, env, input)
    outputs.push(result)
    return result
  }
  const url = await ownedDatabase(second.url, 'cli_app', 'cli-password-8')
  const attached = await run(['attach', 'cli-app', '--url', '-', '--domain', 'cli-app.test'], `${url}\n`)
  t.equal(attached.code, 0, attached.stderr)
  t.match(attached.stdout, /^attached cli-app: database cli_app on no registered server, schema \d+_\w+, at cli-app\.test\n$/)
  const refused = await run(['attach', 'cli-bad', '--url', url.replace('cli-password-8', 'cli-wrong-9'), '--domain', 'cli-bad.test'])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /login of role cli_app_owner .* was refused/)
  const clashing = await ownedDatabase(second.url, 'cli_clash', 'cli-clash-password-10')
  const owner = new pg.Client({ connectionString: clashing })
  await owner.connect()
  await owner.query('create table articles (id int)')
  await owner.end()
  const clash = await run(['attach', 'cli-clash', '--url', clashing, '--domain', 'cli-clash.test'])
  t.equal(clash.code, 1)
  t.match(clash.stderr, /^tenants: The database cli_clash at 127\.0\.0\.1:\d+ has tables that conflict with the tenant migrations \(relation "articles" already exists\)/)
  t.equal(clash.stderr.trimEnd().split('\n').length, 1, 'one line: not knex\'s copy of the migration\'s SQL')
  const status = await run(['status'])
  t.match(status.stdout, /^legacy +active +- +- +own schema$/m, 'status: an attached --no-migrate tenant has a schema of its own')
  t.match(status.stdout, /^cli-app +active +- +\d+_\w+ +current$/m, 'status: an attached tenant on no registered server')
  t.match(status.stdout, /^own-app +active +default +\d+_\w+ +current$/m, 'status: one on the default server')
  t.match(status.stdout, /^0 of \d+ tenants behind \(and 1 with a schema of their own\)$/m)
  const listed = await run(['list', '--json', '--search', 'cli-app'])
  t.match(JSON.parse(listed.stdout), [{ slug: 'cli-app', attached: true, server: null }])
  const reattached = await run(['reattach', 'cli-app', '--url', '-'], `${url}\n`)
  t.equal(reattached.code, 0, reattached.stderr)
  t.equal(reattached.stdout, 'reattached cli-app: database cli_app on no registered server\n')
  const detached = await run(['drop', 'cli-app'])
  t.equal(detached.code, 0, detached.stderr)
  t.equal(detached.stdout, 'detached cli-app (its database stays)\n')
  t.same(await sql(second.url, 'select datname from pg_database where datname = \'cli_app\''), [{ datname: 'cli_app' }])
  for (const output of outputs) {
    for (const secret of ['cli-password-8', 'cli-wrong-9', 'cli-clash-password-10', String(env.SECRET_KEY)]) {
      t.notOk(output.stdout.includes(secret) || output.stderr.includes(secret), 'no secret in any output')
    }
  }
})
