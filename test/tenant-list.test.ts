import t from './helpers/tap.js'
import type { TenantStatus } from '../src/catalog/catalog-store.js'
import { encodeTenantCursor } from '../src/catalog/tenant-page.js'
import { encodeCursor } from '../src/routes/tenant/pagination.js'
import { tenantView } from '../src/schemas/tenant-view.js'
import { runCli, type CliResult } from './helpers/cli.js'
import { testApp, testEnv } from './helpers/silo.js'

const token = 'admin-token-for-tests-0123456789'
// The CLI runs on the catalog of this app: one environment for both.
const env = testEnv({ ADMIN_TOKEN: token })
const { silo, app } = await testApp(t, env)
const prefix = silo.config.tenantDbPrefix

interface Page { items: Array<{ slug: string }>, nextCursor: string | null }
const get = async (query: string) => await app.inject({ url: `/tenants${query}`, headers: { host: 'admin.localhost', authorization: `Bearer ${token}` } })
const page = async (query: string): Promise<Page> => {
  const res = await get(query)
  if (res.statusCode !== 200) throw new Error(`GET /tenants${query}: ${res.statusCode} ${res.body}`)
  return res.json()
}
/** Every page of a query, `limit` a page, following nextCursor: the pages as they came. */
const walk = async (query: Record<string, string>, between?: (pages: Page[]) => Promise<void>): Promise<Page[]> => {
  const pages: Page[] = []
  for (let cursor: string | null | undefined; cursor !== null;) {
    pages.push(await page(`?${new URLSearchParams({ ...query, ...(cursor === undefined ? {} : { cursor }) }).toString()}`))
    cursor = pages.at(-1)?.nextCursor ?? null
    if (pages.length > 100) throw new Error('the walk does not end')
    if (cursor !== null) await between?.(pages)
  }
  return pages
}
const slugsOf = (pages: Page[]): string[] => pages.flatMap((p) => p.items.map((item) => item.slug))
/** Every tenant as the old one-answer list gave it, in the catalog's slug order. */
const everyone = async () => (await silo.catalog.listTenants()).map(tenantView)
const cli = async (...args: string[]): Promise<CliResult> => await runCli(args, env)

/** A catalog row only: listing needs no database. */
async function addTenant (slug: string, name: string, domains: string[], status: TenantStatus = 'active'): Promise<void> {
  const db = `${prefix}${slug.replaceAll('-', '_')}`
  await silo.catalog.insertTenant({ slug, name, databaseName: db, databaseUser: db, password: 'not-a-real-password', domains })
  if (status !== 'provisioning') await silo.catalog.setStatus(slug, status)
}

await addTenant('acme', 'Acme Corp', ['acme.test', 'www.acme-shop.test'])
await addTenant('globex', 'Globex', ['globex.test'], 'suspended')
await addTenant('initech', 'Initech 100% Pure', ['initech.test'])
await addTenant('hooli', 'Hooli_Labs', ['hooli.test'], 'failed')
await addTenant('umbrella', 'Umbrella Corp', ['umbrella.test', 'raccoon-city.example'], 'suspended')
await addTenant('wayne', 'Wayne Enterprises', ['wayne.test', 'gotham.example'], 'provisioning')
await addTenant('back-slash', 'Back\\slash', ['back-slash.test'], 'dropping')
for (let i = 1; i <= 18; i++) {
  const n = String(i).padStart(2, '0')
  await addTenant(`tenant-${n}`, `Tenant ${n}`, [`tenant-${n}.test`, `alt${n}.example`], i % 5 === 0 ? 'suspended' : 'active')
}
const fleet = await everyone()

t.test('walking every page with small limits gives each tenant once, in slug order, as the whole list has it', async (t) => {
  t.equal(fleet.length, 25)
  for (const limit of [1, 2, 3, 7, 24, 25, 26, 1000]) {
    const pages = await walk({ limit: String(limit) })
    t.same(pages.flatMap((p) => p.items), fleet, `limit ${limit}: every tenant once, same shape as before`)
    t.equal(pages.length, Math.max(1, Math.ceil(fleet.length / limit)), `limit ${limit}: ${pages.length} pages, no empty last page`)
    t.ok(pages.slice(0, -1).every((p) => p.items.length === limit && p.nextCursor !== null), `limit ${limit}: full pages with a cursor`)
    t.equal(pages.at(-1)?.nextCursor, null)
  }
  const first = await page('')
  t.equal(first.items.length, 25, 'the default limit (100) takes every tenant here')
  t.equal(first.nextCursor, null)
  t.match(first.items[0], { slug: fleet[0]?.slug, domains: fleet[0]?.domains, primaryDomain: fleet[0]?.primaryDomain, server: 'default' })
})

t.test('filters: status, server, and search in slug, name or domains, any case, wildcards taken literally', async (t) => {
  for (const status of ['active', 'suspended', 'failed', 'provisioning', 'dropping']) {
    t.same(slugsOf(await walk({ status, limit: '4' })), fleet.filter((x) => x.status === status).map((x) => x.slug), `status ${status}`)
  }
  t.same(slugsOf(await walk({ server: 'default', limit: '10' })), fleet.map((x) => x.slug), 'every tenant is on default')
  t.same(await page('?server=nowhere'), { items: [], nextCursor: null }, 'a server no one has: an empty page')

  const contains = (term: string) => fleet.filter((x) => [x.slug, x.name, ...x.domains].some((v) => v.toLowerCase().includes(term.toLowerCase()))).map((x) => x.slug)
  const expected: Record<string, string[]> = {
    'tenant-1': ['tenant-10', 'tenant-11', 'tenant-12', 'tenant-13', 'tenant-14', 'tenant-15', 'tenant-16', 'tenant-17', 'tenant-18'],
    ACME: ['acme'],
    corp: ['acme', 'umbrella'],
    GOTHAM: ['wayne'],
    'acme-shop': ['acme'],
    '100%': ['initech'],
    '%': ['initech'],
    _: ['hooli'],
    '\\': ['back-slash'],
    'a%e': [],
    a_m: [],
    h_oli: [],
    '%%': [],
    zzz: []
  }
  for (const [term, slugs] of Object.entries(expected)) {
    t.same(slugsOf(await walk({ search: term, limit: '2' })), slugs, `search ${JSON.stringify(term)}`)
    t.same(slugs, contains(term), `search ${JSON.stringify(term)} is a plain substring test`)
  }
  t.same(slugsOf(await walk({ search: 'tenant', status: 'suspended', limit: '1' })), ['tenant-05', 'tenant-10', 'tenant-15'], 'filters combine')
  t.same(slugsOf(await walk({ search: '' })), fleet.map((x) => x.slug), 'an empty search keeps everyone')
})

t.test('limits out of range, bad filters and cursors this API did not issue are 400 VALIDATION_FAILED', async (t) => {
  t.equal((await page('?limit=1')).items.length, 1)
  t.equal((await page('?limit=1000')).items.length, 25)
  const valid = encodeTenantCursor('acme')
  const loose = encodeTenantCursor('globex')
  t.equal(loose.length % 4, 3, 'a cursor whose last character carries bits no byte uses')
  const sameBytes = loose.slice(0, -1) + String.fromCharCode(loose.charCodeAt(loose.length - 1) + 1)
  t.equal(Buffer.from(sameBytes, 'base64url').toString(), 't:globex', 'another spelling of the same bytes')
  const forged = (text: string) => Buffer.from(text).toString('base64url')
  const refused = ['limit=0', 'limit=1001', 'limit=-1', 'limit=abc', 'limit=1.5', 'limit=', 'status=deleted', 'status=ACTIVE', 'server=Bad_Name',
    `search=${'x'.repeat(201)}`, 'search=%00', 'cursor=', 'cursor=not%20base64', `cursor=${valid}=`, `cursor=${sameBytes}`, `cursor=${encodeCursor(5)}`,
    `cursor=${forged('t:')}`, `cursor=${forged('t:ACME')}`, `cursor=${forged('t:acme ')}`, `cursor=${forged('x:acme')}`, `cursor=${forged(`t:${'a'.repeat(41)}`)}`,
    `cursor=${'A'.repeat(65)}`, 'cursor=YQ']
  for (const query of refused) {
    const res = await get(`?${query}`)
    t.equal(res.statusCode, 400, query)
    t.equal(res.json().code, 'VALIDATION_FAILED', query)
  }
  t.same(slugsOf([await page(`?cursor=${valid}&limit=2`)]), fleet.slice(1, 3).map((x) => x.slug), 'a cursor issued by the API is taken')
})

t.test('the OpenAPI document describes the query and the page', async (t) => {
  const doc = (await app.inject({ url: '/docs/json', headers: { host: 'admin.localhost' } })).json()
  const list = doc.paths['/tenants'].get
  t.same(list.parameters.map((p: { name: string, in: string }) => `${p.in}:${p.name}`).sort(), ['query:cursor', 'query:limit', 'query:search', 'query:server', 'query:status'])
  t.match(list.parameters.find((p: { name: string }) => p.name === 'limit').schema, { minimum: 1, maximum: 1000, default: 100 })
  t.ok(JSON.stringify(list.responses['200']).includes('nextCursor'))
})

t.test('a walk sees a tenant made after its position, not one made before it, and repeats nothing', async (t) => {
  const seen = slugsOf(await walk({ limit: '5' }, async (pages) => {
    if (pages.length !== 2) return
    // The walk stands after the 10th tenant: one is made behind it, one ahead, one ahead removed.
    const last = pages.at(-1)?.items.at(-1)?.slug ?? ''
    t.ok(last > 'aaa-early' && last < 'umbrella' && last < 'zzz-late', `the walk stands at ${last}`)
    await addTenant('aaa-early', 'Early', ['aaa-early.test'])
    await addTenant('zzz-late', 'Late', ['zzz-late.test'])
    await silo.catalog.deleteTenant('umbrella')
  }))
  t.notOk(seen.includes('aaa-early'), 'made behind the cursor: not in this walk')
  t.ok(seen.includes('zzz-late'), 'made ahead of it: listed')
  t.notOk(seen.includes('umbrella'), 'removed ahead of it: gone')
  t.equal(new Set(seen).size, seen.length, 'no tenant twice')
  t.same(seen, fleet.map((x) => x.slug).filter((slug) => slug !== 'umbrella').concat('zzz-late'))
  const gone = await page(`?limit=3&cursor=${encodeTenantCursor('umbrella')}`)
  t.same(slugsOf([gone]), ['wayne', 'zzz-late'], 'a cursor on a tenant since removed still starts after its place')
  await silo.catalog.deleteTenant('aaa-early')
  await silo.catalog.deleteTenant('zzz-late')
  await addTenant('umbrella', 'Umbrella Corp', ['umbrella.test', 'raccoon-city.example'], 'suspended')
})

t.test('tenants list: --json is one array equal to the API\'s items; filters and --limit; the text table', async (t) => {
  const api = (await walk({ limit: '1000' })).flatMap((p) => p.items)
  const [json, text, suspended, search, limited, limitedText, nowhere, nowhereText, fewest] = await Promise.all([
    cli('list', '--json'), cli('list'), cli('list', '--json', '--status', 'suspended'), cli('list', '--json', '--search', 'CORP'),
    cli('list', '--json', '--limit', '3'), cli('list', '--limit', '2'), cli('list', '--json', '--server', 'nowhere'), cli('list', '--server', 'nowhere'),
    cli('list', '--json', '--status', 'active', '--search', 'tenant-1', '--limit', '4')])
  t.equal(json.code, 0, json.stderr)
  t.same(JSON.parse(json.stdout), api, 'list --json: every tenant, as the API gives them')
  t.equal(json.stdout, `${JSON.stringify(api, null, 2)}\n`, 'and printed as before: one indented array')
  t.match(text.stdout, /^SLUG\s+STATUS\s+SERVER\s+SCHEMA\s+DATABASE\s+DOMAINS\n/)
  t.match(text.stdout, /^acme\s+active\s+default\s+-\s+\S+_acme\s+acme\.test, www\.acme-shop\.test$/m)
  t.equal(text.stdout.trimEnd().split('\n').length, 26, 'a header and a line per tenant')
  t.same(JSON.parse(suspended.stdout).map((x: { slug: string }) => x.slug), ['globex', 'tenant-05', 'tenant-10', 'tenant-15', 'umbrella'])
  t.same(JSON.parse(search.stdout).map((x: { slug: string }) => x.slug), ['acme', 'umbrella'])
  t.same(JSON.parse(limited.stdout), api.slice(0, 3), '--limit: the first n')
  t.equal(limitedText.stdout.trimEnd().split('\n').length, 3)
  t.equal(nowhere.stdout, '[]\n')
  t.equal(nowhereText.stdout, 'no tenants\n')
  t.same(JSON.parse(fewest.stdout).map((x: { slug: string }) => x.slug), ['tenant-11', 'tenant-12', 'tenant-13', 'tenant-14'])

  const refused = await Promise.all([['--limit', '0'], ['--limit', 'x'], ['--limit', '1.5'], ['--status', 'gone'], ['--server', 'Bad_Name']].map(async (args) => await cli('list', ...args)))
  for (const result of refused) {
    t.not(result.code, 0, result.stderr)
    t.equal(result.stdout, '')
    t.match(result.stderr, /limit|status|server/i)
  }
  const help = await cli('list', '--help')
  t.equal(help.code, 0)
  for (const option of ['--json', '--status <status>', '--server <name>', '--search <text>', '--limit <n>']) t.ok(help.stdout.includes(option), `--help names ${option}`)
})

t.test('a list longer than the CLI\'s page of 1,000: walked page by page, one JSON array, one aligned table', async (t) => {
  // 1,100 more catalog rows in two statements, the credential of an existing tenant reused.
  await silo.catalog.knex.raw(`insert into tenants (slug, name, status, server_id, db_name, db_user, db_password)
    select 'bulk-' || lpad(i::text, 4, '0'), 'Bulk ' || i, 'active', server_id, ? || 'bulk_' || i, ? || 'bulk_' || i, db_password
    from generate_series(1, 1100) as i, (select server_id, db_password from tenants where slug = 'acme') as acme`, [prefix, prefix])
  await silo.catalog.knex.raw(`insert into domains (host, tenant_id, is_primary)
    select slug || '.bulk.test', id, true from tenants where slug like 'bulk-%'`)
  const api = (await walk({ limit: '1000' })).flatMap((p) => p.items)
  t.equal(api.length, 1125)
  const [json, text, limited, longer] = await Promise.all([cli('list', '--json'), cli('list'), cli('list', '--json', '--limit', '1001'), cli('list', '--json', '--limit', '5000')])
  t.equal(json.code, 0, json.stderr)
  t.equal(json.stdout, `${JSON.stringify(api, null, 2)}\n`, 'one array over two pages, as JSON.stringify prints it')
  t.same(JSON.parse(limited.stdout), api.slice(0, 1001))
  t.same(JSON.parse(longer.stdout), api)
  const lines = text.stdout.trimEnd().split('\n')
  t.equal(lines.length, 1126, 'one header, then every tenant')
  t.equal(lines.filter((line) => line.startsWith('SLUG')).length, 1, 'the header once')
  const statusColumn = lines[0]?.indexOf('STATUS')
  t.ok(lines.every((line) => /^\S+\s+$/.test(line.slice(0, statusColumn)) && /^\S/.test(line.slice(statusColumn))), 'every line has its status in the header\'s column')
  t.same(lines.slice(1).map((line) => line.split(/\s+/)[0]), api.map((x) => x.slug))
})
