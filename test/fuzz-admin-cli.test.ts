import t from './helpers/tap.js'
import fc from 'fast-check'
import { runCli, type CliResult } from './helpers/cli.js'
import { TEST_SECRET_KEY, createTenant, databaseUrl, testApp } from './helpers/silo.js'
import {
  FuzzTally, LONE_SURROGATE, SLUG_RE, SqlWatch, assertContractError, assertPrototypesClean, dnsName, expectedHost, hostileString, insertInside,
  invalidDomain, invalidSlug, isDnsName, show, stringsIn, validSlug, type Expected, type HttpResult
} from './helpers/fuzz.js'

/*
 * Hostile slugs, domains and tenant bodies through the admin API and the tenants CLI, against
 * real PostgreSQL: every invalid one is refused with a stable code (or a non-zero exit and one
 * line on stderr), nothing is created on the server (databases, roles, catalog rows), and no
 * input reaches SQL as text.
 */

const tally = new FuzzTally()
t.comment(`fast-check seed ${tally.seed} (replay with FUZZ_SEED=${tally.seed})`)

const token = 'admin-token-for-tests-0123456789'
const sql = new SqlWatch()
const { silo, app } = await testApp(t, { ADMIN_TOKEN: token })
sql.watch(silo.catalog.knex)
sql.watch(silo.admin.knex)
const prefix = silo.config.tenantDbPrefix
await createTenant(silo, 'acme')

type Method = 'GET' | 'POST' | 'DELETE'
async function admin (method: Method, url: string, payload?: string | Buffer, contentType: string | null = 'application/json'): Promise<HttpResult> {
  return await app.inject({
    method,
    url,
    headers: { host: 'admin.localhost', authorization: `Bearer ${token}`, ...(contentType === null || payload === undefined ? {} : { 'content-type': contentType }) },
    ...(payload === undefined ? {} : { payload })
  })
}

/** What exists on the server and in the catalog for this test's prefix. */
async function footprint (): Promise<unknown> {
  return {
    databases: await silo.admin.listDatabases(prefix),
    roles: await silo.admin.listRoles(prefix),
    tenants: (await silo.catalog.listTenants()).map(({ slug, status, domains }) => ({ slug, status, domains }))
  }
}

// Silo's own SQL, from benign admin calls: an input found in it proves nothing.
await admin('GET', '/tenants')
await admin('GET', '/tenants/acme')
await admin('POST', '/tenants/acme/domains', '{"domain":"warm.test"}')
await admin('DELETE', '/tenants/acme/domains/warm.test')
await admin('POST', '/tenants/acme/suspend')
await admin('POST', '/tenants/acme/resume')
await admin('GET', '/tenants/nobody')
await admin('DELETE', '/tenants/nobody')
await admin('POST', '/tenants/nobody/domains', '{"domain":"x.test"}')
await admin('DELETE', '/tenants/acme/domains/nothere.test')
await admin('POST', '/tenants', '{"slug":"acme","domains":["other.test"]}')
sql.freezeBaseline()
const before = await footprint()

/** The decoded path parameter the router sees, or null when the path is not valid percent-encoding. */
function routedParam (segment: string): string | null {
  try {
    return decodeURIComponent(segment)
  } catch {
    return null
  }
}
/**
 * Segments the URL parser may turn into another path (a raw `/`, `?`, `#`, a `\\` it reads as `/`,
 * tabs it drops, dot segments it resolves): only characters of RFC 3986 `pchar` reach the router
 * as they are.
 */
const changesRoute = (segment: string, param: string | null): boolean =>
  /[^A-Za-z0-9\-._~%!$&'()*+,;=:@]/.test(segment) || ['', '.', '..'].includes(param ?? '')
const routable = (segment: string): boolean => (routedParam(segment)?.length ?? Infinity) <= 100

/** JSON text written by hand, so keys like `__proto__` survive. */
type Entry = readonly [string, unknown]
class RawJson { constructor (readonly text: string) {} }
const objectText = (entries: readonly Entry[]): string =>
  `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v instanceof RawJson ? v.text : JSON.stringify(v)}`).join(',')}}`

const freshSlug = validSlug.filter((slug) => slug !== 'acme')
const domains = fc.array(dnsName, { minLength: 1, maxLength: 3 })
const adminLimit = 64 * 1024
const invalidBody = (text: string, contentType = 'application/json'): { text: string, contentType: string, expect: Expected[] } => ({
  text,
  contentType,
  expect: [Buffer.byteLength(text) > adminLimit ? [413, 'PAYLOAD_TOO_LARGE'] : [400, 'VALIDATION_FAILED']]
})

t.test('POST /tenants with a hostile slug, domain, name or shape is refused with a stable code and creates nothing', async (t) => {
  const wrong = fc.jsonValue({ maxDepth: 2 })
  const body = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(invalidSlug, domains, fc.option(hostileString)).map(([slug, ds, name]) => invalidBody(objectText([['slug', slug], ['domains', ds], ...(name === null ? [] : [['name', name] as const])]))) },
    {
      weight: 4,
      arbitrary: fc.tuple(freshSlug, fc.array(fc.oneof(dnsName, invalidDomain), { maxLength: 3 }), invalidDomain, fc.nat())
        .map(([slug, ds, bad, at]) => { const all = [...ds]; all.splice(at % (all.length + 1), 0, bad); return invalidBody(objectText([['slug', slug], ['domains', all]])) })
    },
    { weight: 1, arbitrary: fc.tuple(freshSlug, fc.mixedCase(fc.constantFrom('admin.localhost', 'admin.localhost.'))).map(([slug, host]) => invalidBody(objectText([['slug', slug], ['domains', [host]]]))) },
    {
      weight: 2,
      arbitrary: fc.tuple(freshSlug, domains, fc.constantFrom('__proto__', 'constructor', 'prototype', 'status', 'database', 'password', 'role', 'id', 'Slug', ''),
        fc.constantFrom<unknown>(new RawJson('{"polluted":true}'), new RawJson('{"prototype":{"polluted":true}}'), 'active', 1, null))
        .map(([slug, ds, key, value]) => invalidBody(objectText([['slug', slug], ['domains', ds], [key, value]])))
    },
    {
      weight: 3,
      arbitrary: fc.tuple(freshSlug, domains, fc.constantFrom('slug', 'domains', 'domain item', 'name', 'seed'), wrong).map(([slug, ds, field, value]) => {
        const entries: Entry[] = [['slug', slug], ['domains', ds]]
        if (field === 'slug') entries[0] = ['slug', typeof value === 'string' ? [value] : value]
        if (field === 'domains') entries[1] = ['domains', Array.isArray(value) && value.every((v) => typeof v === 'string') && value.length > 0 ? value.join(',') : value]
        if (field === 'domain item') entries[1] = ['domains', [...ds, typeof value === 'string' ? { host: value } : value]]
        if (field === 'name') entries.push(['name', typeof value === 'string' ? (value.trim() === '' ? value : [value]) : value])
        if (field === 'seed') entries.push(['seed', typeof value === 'boolean' ? String(value) : value])
        return invalidBody(objectText(entries))
      })
    },
    {
      weight: 1,
      arbitrary: fc.tuple(freshSlug, fc.oneof(fc.constant([] as string[]), fc.uniqueArray(dnsName, { minLength: 21, maxLength: 30 })), fc.option(fc.integer({ min: 201, max: 80000 })))
        .map(([slug, ds, long]) => invalidBody(objectText([['slug', slug], ['domains', ds], ...(long === null ? [] : [['name', 'n'.repeat(long)] as const])])))
    },
    { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('', '[]', 'null', '{"slug":', '{"slug":"ok-slug","domains":["a.test"]}x', "{'slug':'x'}")).filter((s) => !s.startsWith('\ufeff')).map((s) => invalidBody(s)) },
    { weight: 1, arbitrary: fc.tuple(freshSlug, domains, fc.constantFrom('text/html', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x')).map(([slug, ds, ct]) => ({ text: objectText([['slug', slug], ['domains', ds]]), contentType: ct, expect: [[415, 'UNSUPPORTED_MEDIA_TYPE']] as Expected[] })) }
  )
  await tally.property(t, 'POST /tenants body', body, async ({ text, contentType, expect }) => {
    const mark = sql.mark
    const context = `POST /tenants ${show(contentType)} ${show(text, 200)}`
    const res = await admin('POST', '/tenants', text, contentType)
    assertContractError(res, context, expect)
    assertPrototypesClean(context)
    let strings: string[] = []
    try {
      strings = stringsIn(JSON.parse(text))
    } catch {}
    sql.assertNoLeak(strings, mark, context)
  }, { numRuns: 1200 })
  t.same(await footprint(), before, 'no database, role or catalog entry was created')
})

const slugRoutes: Array<{ method: Method, path: (slug: string) => string, payload?: string }> = [
  { method: 'GET', path: (s) => `/tenants/${s}` },
  { method: 'POST', path: (s) => `/tenants/${s}/suspend` },
  { method: 'POST', path: (s) => `/tenants/${s}/resume` },
  { method: 'DELETE', path: (s) => `/tenants/${s}` },
  { method: 'POST', path: (s) => `/tenants/${s}/domains`, payload: '{"domain":"fresh-domain.test"}' },
  { method: 'DELETE', path: (s) => `/tenants/${s}/domains/acme.test` },
  // Not GET /tenants/:slug/migrations: `..` as its slug makes it GET /migrations, a route that answers.
  { method: 'POST', path: (s) => `/tenants/${s}/migrate` }
]
const slugCase = fc.tuple(fc.oneof({ weight: 4, arbitrary: invalidSlug }, { weight: 1, arbitrary: freshSlug }), fc.constantFrom(...slugRoutes), fc.boolean())
  .map(([slug, route, encode]) => ({ slug, route, segment: encode ? encodeURIComponent(slug) : slug }))

t.test('a hostile slug in an admin path is 400 VALIDATION_FAILED (or 404 for a well-formed unknown one) and changes nothing', async (t) => {
  // Malformed percent-encoding and over-long parameters have a property of their own below.
  await tally.property(t, 'admin :slug routes', slugCase.filter(({ segment }) => routable(segment)), async ({ slug, route, segment }) => {
    const mark = sql.mark
    const url = route.path(segment)
    const context = `${route.method} ${show(url)}`
    const res = await admin(route.method, url, route.payload)
    const param = routedParam(segment)
    const expected: Expected[] = changesRoute(segment, param)
      ? [[400, 'VALIDATION_FAILED'], [404, 'NOT_FOUND'], [404, 'TENANT_NOT_FOUND']]
      : [SLUG_RE.test(param ?? '') ? [404, 'TENANT_NOT_FOUND'] : [400, 'VALIDATION_FAILED']]
    assertContractError(res, context, expected)
    sql.assertNoLeak([slug, param ?? ''], mark, context)
  }, { numRuns: 1200 })
  t.same(await footprint(), before, 'no tenant was created, changed or dropped')
})

t.test('a hostile domain for an existing tenant is 400 VALIDATION_FAILED, in a body or in a path, and changes nothing', async (t) => {
  const domainCase = fc.oneof(
    { weight: 3, arbitrary: invalidDomain.map((domain) => ({ method: 'POST' as const, url: '/tenants/acme/domains', payload: objectText([['domain', domain]]), input: domain })) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.oneof(fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== 'string'), fc.constant(new RawJson('{"__proto__":{"polluted":true}}'))), fc.option(fc.constantFrom('__proto__', 'constructor', 'slug', 'primary')))
        .map(([value, extra]) => ({ method: 'POST' as const, url: '/tenants/acme/domains', payload: objectText(extra === null ? [['domain', value]] : [['domain', 'extra-key.test'], [extra, value]]), input: extra === null ? '' : 'extra-key.test' }))
    },
    {
      weight: 3,
      arbitrary: fc.tuple(invalidDomain, fc.boolean()).map(([domain, encode]) => ({ method: 'DELETE' as const, url: `/tenants/acme/domains/${encode ? encodeURIComponent(domain) : domain}`, payload: undefined, input: domain }))
        // The router percent-decodes the segment: one that decodes to a valid name (a raw `%30` is
        // `0`) is no hostile domain.
        .filter(({ url }) => {
          const segment = url.slice('/tenants/acme/domains/'.length)
          const param = routedParam(segment)
          return routable(segment) && !(param !== null && isDnsName(param.toLowerCase().replace(/\.$/, '')))
        })
    }
  )
  await tally.property(t, 'acme domains', domainCase, async ({ method, url, payload, input }) => {
    const mark = sql.mark
    const context = `${method} ${show(url)} ${show(payload ?? '')}`
    const res = await admin(method, url, payload)
    // Should one be accepted, take it out again, so the failure is reported once and cascades nowhere.
    if (res.statusCode === 201) await silo.provisioner.removeDomain(input)
    const segment = url.slice('/tenants/acme/domains/'.length)
    const loose = method === 'DELETE' && changesRoute(segment, routedParam(segment))
    // A path normalized to another admin URL falls to the 404 handler, which on the admin host answers TENANT_NOT_FOUND.
    assertContractError(res, context, loose ? [[400, 'VALIDATION_FAILED'], [404, 'NOT_FOUND'], [404, 'TENANT_NOT_FOUND']] : [[400, 'VALIDATION_FAILED']])
    assertPrototypesClean(context)
    sql.assertNoLeak([input, ...stringsIn(payload === undefined ? null : JSON.parse(payload))], mark, context)
  }, { numRuns: 800 })
  t.same(await footprint(), before, 'acme\'s domains are unchanged and nothing else exists')
})

/** Valid DNS names that look odd: mixed case, a trailing dot, `xn--` and `--` labels, 63-character labels. */
const oddLabel = fc.oneof(
  fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/),
  fc.constantFrom('xn--80ak6aa92e', 'a--b', '0', '9lives', 'x'.repeat(63)),
  fc.stringMatching(/^[a-z][a-z0-9-]{60}[a-z0-9]$/)
)
const oddValidDomain = fc.tuple(fc.array(oddLabel, { minLength: 1, maxLength: 4 }), fc.constantFrom('test', 'example', 'xn--p1ai'), fc.boolean())
  .chain(([labels, tld, dot]) => fc.mixedCase(fc.constant(`${labels.join('.')}.${tld}${dot ? '.' : ''}`)))
  .filter((d) => { const host = d.toLowerCase().replace(/\.$/, ''); return isDnsName(host) && host !== 'acme.test' && host !== 'admin.localhost' })

t.test('a valid but odd domain is stored normalized, routes to its tenant, and can be removed again', async (t) => {
  await tally.property(t, 'odd valid domain round trip', oddValidDomain.filter((d) => d.length <= 100), async (domain) => {
    const host = domain.toLowerCase().replace(/\.$/, '')
    const context = `domain ${show(domain)}`
    const added = await admin('POST', '/tenants/acme/domains', JSON.stringify({ domain }))
    if (added.statusCode !== 201) throw new Error(`expected 201\n  input: ${context}\n  got: ${added.statusCode} ${show(added.body, 300)}`)
    const routed = await app.inject({ url: '/tenant', headers: { host: domain } })
    const removed = await admin('DELETE', `/tenants/acme/domains/${encodeURIComponent(domain)}`)
    if (!(JSON.parse(added.body) as { domains: string[] }).domains.includes(host)) throw new Error(`not stored as ${host}: ${context}`)
    if (expectedHost(domain) !== host || routed.statusCode !== 200 || (JSON.parse(routed.body) as { slug: string }).slug !== 'acme') {
      throw new Error(`does not route to acme: ${context}: ${routed.statusCode} ${show(routed.body)}`)
    }
    if (removed.statusCode !== 204) throw new Error(`expected 204 on removal\n  input: ${context}\n  got: ${removed.statusCode} ${show(removed.body, 300)}`)
  }, { numRuns: 60 })
  t.same(await footprint(), before, 'every added domain was removed')
})

t.test('over-long parameters and malformed percent-encoding in admin paths are 400 VALIDATION_FAILED; a valid domain of 101-253 characters can be removed', async (t) => {
  const longParam = fc.oneof(
    fc.tuple(fc.oneof(invalidSlug, validSlug), fc.integer({ min: 101, max: 3000 }), fc.constantFrom(...slugRoutes))
      .map(([slug, n, route]) => ({ method: route.method, url: route.path(encodeURIComponent(slug + 'a'.repeat(n))), payload: route.payload, expect: 400 })),
    fc.tuple(fc.constantFrom('%', '%ZZ', '%E0%A4', '%C0', 'a%2'), fc.constantFrom(...slugRoutes)).map(([bad, route]) => ({ method: route.method, url: route.path(bad), payload: route.payload, expect: 400 })),
    oddValidDomain.filter((d) => d.length > 100).map((domain) => ({ method: 'DELETE' as Method, url: `/tenants/acme/domains/${domain}`, payload: undefined, expect: 204, domain }))
  )
  await tally.property(t, 'admin unroutable params', longParam, async (c) => {
    const context = `${c.method} ${show(c.url)}`
    if ('domain' in c) {
      const added = await admin('POST', '/tenants/acme/domains', JSON.stringify({ domain: c.domain }))
      if (added.statusCode !== 201) throw new Error(`expected 201 on adding\n  input: ${context}\n  got: ${added.statusCode} ${show(added.body, 300)}`)
      const removed = await admin('DELETE', c.url)
      if (removed.statusCode !== 204) {
        await silo.provisioner.removeDomain(c.domain)
        throw new Error(`a valid domain cannot be removed over the admin API\n  input: ${context}\n  got: ${removed.statusCode} ${show(removed.body, 300)}`)
      }
      return
    }
    assertContractError(await admin(c.method, c.url, c.payload), context, [[400, 'VALIDATION_FAILED']])
  }, { numRuns: 100 })
  t.same(await footprint(), before, 'nothing changed')
})

t.test('a domain that is a host name only after Unicode case folding (KELVIN SIGN) is refused with 400 VALIDATION_FAILED', async (t) => {
  const kelvin = fc.tuple(fc.stringMatching(/^[a-z]{0,5}$/), fc.stringMatching(/^[a-z]{0,5}$/)).map(([a, b]) => `${a}\u212a${b}.test`)
  await tally.property(t, 'domain with KELVIN SIGN', kelvin, async (domain) => {
    const res = await admin('POST', '/tenants/acme/domains', JSON.stringify({ domain }))
    if (res.statusCode === 201) await silo.provisioner.removeDomain(domain.replaceAll('\u212a', 'k'))
    assertContractError(res, `domain ${show(domain)}`, [[400, 'VALIDATION_FAILED']])
  }, { numRuns: 30 })
  t.same(await footprint(), before, 'acme\'s domains are unchanged')
})

t.test('a NUL character in a tenant name is refused with 400 VALIDATION_FAILED, not a 500, and creates nothing', async (t) => {
  const nulName = fc.tuple(freshSlug, dnsName, hostileString, fc.nat()).map(([slug, domain, name, at]) => ({ slug, domain, name: insertInside(`n${name}n`, '\u0000', at) }))
  await tally.property(t, 'NUL in tenant name', nulName, async ({ slug, domain, name }) => {
    const res = await admin('POST', '/tenants', JSON.stringify({ slug, name, domains: [domain] }))
    if (res.statusCode === 201) await silo.provisioner.drop(slug)
    assertContractError(res, `slug ${slug} name ${show(name)}`, [[400, 'VALIDATION_FAILED']])
  }, { numRuns: 20, endOnFailure: true })
  t.same(await footprint(), before, 'nothing was created')
})

t.test('a few valid tenants with odd slugs, domains and hostile names are created exactly, routed, and dropped without trace', async (t) => {
  const name = hostileString.map((s) => `n${s}n`).filter((s) => !s.includes('\u0000') && !LONE_SURROGATE.test(s) && [...s].length <= 200)
  const oddSlug = fc.oneof(fc.constantFrom('a--b', 'z-', `x${'-'.repeat(38)}y`, 'q0-9'), fc.stringMatching(/^[a-z]([a-z0-9]|--){1,19}$/)).filter((s) => SLUG_RE.test(s) && s !== 'acme')
  const tenant = fc.record({ slug: oddSlug, name, domains: fc.uniqueArray(oddValidDomain, { minLength: 1, maxLength: 2, selector: (d) => d.toLowerCase().replace(/\.$/, '') }) })
  await tally.property(t, 'valid odd tenant', tenant, async ({ slug, name, domains }) => {
    const mark = sql.mark
    const context = `slug ${slug} name ${show(name)} domains ${show(domains)}`
    const hosts = domains.map((d) => d.toLowerCase().replace(/\.$/, ''))
    const created = await admin('POST', '/tenants', JSON.stringify({ slug, name, domains }))
    if (created.statusCode !== 201) throw new Error(`expected 201\n  input: ${context}\n  got: ${created.statusCode} ${show(created.body, 300)}`)
    let failure: unknown = null
    try {
      const view = JSON.parse(created.body) as { slug: string, name: string, domains: string[], primaryDomain: string, database: string, status: string }
      const database = `${prefix}${slug.replaceAll('-', '_')}`
      if (view.slug !== slug || view.name !== name || view.status !== 'active' || view.primaryDomain !== hosts[0] || view.database !== database ||
        [...view.domains].sort().join() !== [...hosts].sort().join()) {
        throw new Error(`stored differently\n  input: ${context}\n  got: ${show(view, 400)}`)
      }
      if (!(await silo.admin.databaseExists(database)) || !(await silo.admin.roleExists(database))) throw new Error(`no database or role ${database}`)
      const routed = await app.inject({ url: '/tenant', headers: { host: domains[0] ?? '' } })
      if (routed.statusCode !== 200 || (JSON.parse(routed.body) as { name: string }).name !== name) throw new Error(`not routed: ${context}: ${routed.statusCode}`)
      sql.assertNoLeak([slug, name, ...domains], mark, context)
    } catch (error) {
      failure = error
    }
    const dropped = await admin('DELETE', `/tenants/${slug}`)
    if (failure !== null) throw failure
    if (dropped.statusCode !== 204) throw new Error(`drop failed: ${context}: ${dropped.statusCode} ${show(dropped.body)}`)
    if (await silo.admin.databaseExists(`${prefix}${slug.replaceAll('-', '_')}`)) throw new Error(`database left behind: ${context}`)
  }, { numRuns: 3, endOnFailure: true })
  t.same(await footprint(), before, 'every database, role and catalog row is gone again')
})

t.test('the tenants CLI refuses hostile slugs and domains with a non-zero exit and one line on stderr, and creates nothing', async (t) => {
  const env = {
    DATABASE_URL: databaseUrl(),
    CATALOG_DATABASE: silo.config.catalogDatabase,
    TENANT_DB_PREFIX: prefix,
    SECRET_KEY: TEST_SECRET_KEY,
    LOG_LEVEL: 'silent'
  }
  // A process argument cannot hold NUL (spawn refuses it), and -h/--help asks commander for help
  // (exit 0) by design: neither is an input the CLI gets to judge.
  const arg = (a: fc.Arbitrary<string>): fc.Arbitrary<string> => a.filter((s) => !s.includes('\u0000') && !/^-(h|-help)/.test(s))
  const slug = arg(invalidSlug)
  const domain = arg(invalidDomain)
  const cliCase = fc.oneof(
    fc.tuple(slug, dnsName).map(([s, d]) => ['create', s, '--domain', d]),
    fc.tuple(freshSlug, domain).map(([s, d]) => ['create', s, '--domain', d]),
    fc.tuple(freshSlug, dnsName, domain).map(([s, d, bad]) => ['create', s, '--domain', d, '--domain', bad, '--name', 'x']),
    fc.tuple(fc.constantFrom('suspend', 'resume'), slug).map(([command, s]) => [command, s]),
    slug.map((s) => ['drop', s, '--yes']),
    domain.map((d) => ['domains', 'add', 'acme', d]),
    fc.tuple(slug, dnsName).map(([s, d]) => ['domains', 'add', s, d]),
    domain.map((d) => ['domains', 'remove', d]),
    slug.map((s) => ['migrate', s])
  )
  // And, every run, arguments commander quotes back in its own error: with a newline (a seed once
  // found one, and the quote was two lines) and a carriage return.
  const cases = [...fc.sample(cliCase, { numRuns: 12, seed: tally.seed }), ['suspend', '-3bd-\n'], ['create', 'fine', '--domain', 'fine.test', '--na\rme\nerror: forged', 'x']]
  const results: Array<{ args: string[], result: CliResult }> = []
  const queue = [...cases]
  await Promise.all(Array.from({ length: 2 }, async () => {
    for (let args = queue.shift(); args !== undefined; args = queue.shift()) results.push({ args, result: await runCli(args, env) })
  }))
  tally.add('CLI hostile arguments', results.length)
  t.comment(`CLI: ${results.length} runs`)
  for (const { args, result } of results) {
    const line = result.stderr.trimEnd()
    const ok = result.code !== 0 && result.code !== null && line.length > 0 && !line.includes('\n') && !/\n\s+at /.test(result.stderr) && result.stdout === ''
    t.ok(ok, `tenants ${args.map((a) => show(a, 60)).join(' ')} → exit ${result.code}, stderr ${show(result.stderr, 200)}`)
  }
  t.same(await footprint(), before, 'no database, role or catalog entry was created or changed')
})

t.test('fuzz case count', async (t) => {
  t.comment(`SQL watch: ${sql.statements} statements, ${sql.checked} hostile inputs checked against SQL text, ${sql.inBaseline} skipped as part of Silo's own SQL`)
  t.ok(sql.checked > 1000, 'the SQL watch checked hostile inputs')
  t.comment(`fuzz-admin-cli: ${tally.total} cases in all (seed ${tally.seed})\n${tally.summary()}`)
  t.ok(tally.total >= 3000, `${tally.total} cases`)
})
