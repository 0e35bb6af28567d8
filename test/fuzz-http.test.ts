import t from './helpers/tap.js'
import fc from 'fast-check'
import type { AddressInfo } from 'node:net'
import type { Knex } from 'knex'
import { createTenant, testApp } from './helpers/silo.js'
import {
  FuzzTally, LONE_SURROGATE, SqlWatch, assertContractError, assertPrototypesClean, expectedHost, hostileString,
  insertInside, show, stringsIn, type Expected, type HttpResult
} from './helpers/fuzz.js'
import { rawRequest } from './helpers/raw-http.js'

/*
 * Hostile HTTP input against the real app and real PostgreSQL: Host headers (through inject and
 * through a raw socket), JSON bodies of POST and PATCH /articles, path and query parameters.
 * Every rejection must be a contract error, nothing a rejected request sent may be written, no
 * prototype may be polluted, and no input may reach SQL as text.
 */

const tally = new FuzzTally()
t.comment(`fast-check seed ${tally.seed} (replay with FUZZ_SEED=${tally.seed})`)

const sql = new SqlWatch()
const { silo, app } = await testApp(t, {}, (app) => {
  // Tenant pools are created inside requests; watch each one the first time a route gets it.
  app.addHook('preHandler', async (request) => {
    if ((request.db as Knex | null) !== null) sql.watch(request.db)
  })
})
sql.watch(silo.catalog.knex)
sql.watch(silo.admin.knex)

await createTenant(silo, 'acme', { domains: ['acme.test', 'www.acme.test', 'kilo.test'] })
await createTenant(silo, 'vault')
await createTenant(silo, 'blank')
await createTenant(silo, 'scribe')
const TENANT_HOSTS = new Set(['acme.test', 'www.acme.test', 'kilo.test'])

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE'
interface Call { method?: Method, url: string, host?: string, payload?: string | Buffer, contentType?: string | null }

/** app.inject, or null when light-my-request itself refuses the request (counted, never hidden). */
const refusedByInject: string[] = []
async function call ({ method = 'GET', url, host = 'acme.test', payload, contentType }: Call): Promise<HttpResult | null> {
  const headers: Record<string, string> = { host }
  if (contentType !== undefined && contentType !== null) headers['content-type'] = contentType
  try {
    return await app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) })
  } catch (error) {
    refusedByInject.push(`${method} ${show(url, 60)} host=${show(host, 60)}: ${(error as Error).message}`)
    return null
  }
}

async function tenantDb<T> (slug: string, fn: (db: Knex) => Promise<T>): Promise<T> {
  const tenant = await silo.catalog.tenantBySlug(slug)
  if (tenant === null) throw new Error(`no tenant ${slug}`)
  const lease = silo.pools.acquire(tenant)
  sql.watch(lease.db)
  try {
    return await fn(lease.db)
  } finally {
    lease.release()
  }
}
const countArticles = async (slug: string): Promise<number> =>
  await tenantDb(slug, async (db) => Number((await db('articles').count<Array<{ count: string }>>('* as count'))[0]?.count))
const articleRow = async (slug: string, id: number): Promise<unknown> =>
  await tenantDb(slug, async (db) => await db('articles').where({ id }).first())

// Silo's own SQL, from benign requests: an input found in it proves nothing (e.g. `"id"`).
for (let i = 0; i < 25; i++) await call({ method: 'POST', url: '/articles', payload: JSON.stringify({ title: `seed ${i}`, body: 'b' }), contentType: 'application/json' })
const vaultArticle = (await call({ method: 'POST', url: '/articles', host: 'vault.test', payload: '{"title":"keep","body":"me"}', contentType: 'application/json' }))?.body
const vaultId = (JSON.parse(vaultArticle ?? '{}') as { id: number }).id
for (const url of ['/tenant', '/articles', '/articles?limit=2', `/articles/${vaultId}`, '/articles/999999', '/healthz']) await call({ url, host: 'vault.test' })
await call({ method: 'PATCH', url: `/articles/${vaultId}`, host: 'vault.test', payload: '{"published":false}', contentType: 'application/json' })
await call({ method: 'DELETE', url: '/articles/999999', host: 'vault.test' })
sql.freezeBaseline()
const vaultSnapshot = await articleRow('vault', vaultId)

const json = 'application/json'
const expectOk = (res: HttpResult | null, status: number, context: string): unknown => {
  if (res === null) throw new Error(`inject refused a request the app must answer: ${context}`)
  if (res.statusCode !== status) throw new Error(`expected ${status}\n  input: ${context}\n  got: ${res.statusCode} ${show(res.body, 300)}`)
  return res.body === '' ? null : JSON.parse(res.body)
}

// ---------------------------------------------------------------------------------------------
// Host headers

const label = fc.stringMatching(/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?$/)
const name = fc.array(fc.oneof({ weight: 9, arbitrary: label }, { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9]{60,70}$/) }), { minLength: 1, maxLength: 5 })
  .map((labels) => labels.join('.'))
const port = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 65535 }).map(String) },
  { weight: 2, arbitrary: fc.integer({ min: 65536, max: 99999 }).map(String) },
  { weight: 1, arbitrary: fc.bigInt({ min: 100000n, max: 10n ** 30n }).map(String) },
  { weight: 2, arbitrary: fc.constantFrom('', '-1', '+80', '8O', '0x50', ' 80', '80 ', '１', '000080', '00080', '4294967377', '65536', '0', ':80', '80/x', '80.0') }
)
/** A host with maybe trailing dots and maybe a port. */
const decorate = (host: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.tuple(host, fc.oneof({ weight: 6, arbitrary: fc.constant('') }, { weight: 2, arbitrary: fc.constant('.') }, { weight: 1, arbitrary: fc.constantFrom('..', '...') }),
    fc.option(port, { freq: 3 }))
    .map(([h, dots, p]) => `${h}${dots}${p === null ? '' : `:${p}`}`)
const tenantHost = decorate(fc.mixedCase(fc.constantFrom(...TENANT_HOSTS)))
const SPECIAL_HOSTS = ['acme.test.', 'acme.test..', '.acme.test', 'acme..test', 'acme.test.:80', 'acme.test:', ':80', ':', '.', '..', 'localhost',
  'LOCALHOST:3000', 'admin.localhost', 'acme', 'test', '-acme.test', 'acme-.test', 'xn--acme.test', 'xn--80ak6aa92e.test', 'acme.test:0',
  'acme.test:65535', 'acme.test:65536', 'acme.test:-1', 'acme.test:80:80', 'user@acme.test', 'acme.test@evil.test', 'evil.test#acme.test',
  'acme.test/..', 'acme.test\\', '[acme.test]', 'acme.test%00', 'acme%2etest', '1.2.3.4', '1.2.3.4.5', '0x7f.1', '2130706433', '[::1]:80',
  '::1', '[::ffff:127.0.0.1]', 'acme.123', 'a.b-.test', 'аcme.test', 'ａｃｍｅ.test', '\u212Ailo.test', 'kİlo.test', 'acme.tеst', 'ACME.TEST',
  'acme.test ', ' acme.test', 'acme.test\t', 'acme .test', 'acme.test\u0000', '\u0000', 'acme.test\r\nx-injected: 1', 'acme.test,evil.test',
  `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(56)}.test`, `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.test`,
  `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(56)}.test.:65535`, `${'a'.repeat(63)}.test`, `${'a'.repeat(64)}.test`]
const insertAnywhere = (piece: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.tuple(fc.oneof(name, tenantHost), piece, fc.nat()).map(([h, p, at]) => { const i = at % (h.length + 1); return h.slice(0, i) + p + h.slice(i) })
const hostHeader: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: tenantHost },
  { weight: 4, arbitrary: decorate(name) },
  { weight: 1, arbitrary: decorate(fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.ipV6(), fc.ipV6().map((ip) => `[${ip}]`))) },
  { weight: 1, arbitrary: fc.oneof(fc.integer({ min: 64, max: 8000 }).map((n) => 'a'.repeat(n)), fc.integer({ min: 5, max: 80 }).map((n) => Array(n).fill('a'.repeat(63)).join('.'))) },
  { weight: 1, arbitrary: fc.tuple(name, fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }).filter((s) => /[^\x20-\x7e]/.test(s)), fc.nat()).map(([h, u, at]) => insertInside(h, u, at)) },
  { weight: 1, arbitrary: insertAnywhere(fc.constantFrom('/', '\\', '?', '#', '@', '%', '%2e', '..', '/..', '[', ']', '*', ',', ';', '"', "'", '<', '>', '`', '|', '~', '!', '$', '&', '(', ')', '+', '=', '{', '}', '^', ' ', '_')) },
  { weight: 1, arbitrary: insertAnywhere(fc.integer({ min: 0, max: 31 }).chain((c) => fc.constantFrom(String.fromCharCode(c), '\u007f'))) },
  { weight: 2, arbitrary: fc.constantFrom(...SPECIAL_HOSTS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...'acmeAC.tst:09-'), maxLength: 24 }) }
)
const hostUrls = ['/tenant', '/articles?limit=1', '/articles/1']

t.test('a Host header is a tenant host (200), a well-formed unknown host (404 TENANT_NOT_FOUND) or malformed (400 HOST_INVALID), never a 5xx', async (t) => {
  const outcomes = { served: 0, invalid: 0, unknown: 0 }
  // light-my-request replaces an empty Host by its default: the empty header goes through the socket test below.
  // KELVIN SIGN (the one non-ASCII character whose lowercase is ASCII) has a property of its own below.
  const header = hostHeader.filter((h) => h !== '' && !h.includes('\u212a'))
  await tally.property(t, 'Host header (inject)', fc.tuple(header, fc.constantFrom(...hostUrls)), async ([header, url]) => {
    const mark = sql.mark
    const res = await call({ url, host: header })
    if (res === null) return
    const context = `Host ${show(header)} GET ${url}`
    const host = expectedHost(header)
    if (host === null) {
      assertContractError(res, context, [[400, 'HOST_INVALID']])
      outcomes.invalid++
    } else if (host === silo.config.adminHost) {
      // The admin host is no tenant's: tenant routes do not exist there.
      assertContractError(res, context, [[404, 'NOT_FOUND']])
      outcomes.unknown++
    } else if (TENANT_HOSTS.has(host)) {
      if (res.statusCode === 404 && url === '/articles/1') assertContractError(res, context, [[404, 'NOT_FOUND']])
      else if (res.statusCode !== 200) throw new Error(`expected the tenant to answer 200\n  input: ${context}\n  got: ${res.statusCode} ${show(res.body, 300)}`)
      if (url === '/tenant' && (JSON.parse(res.body) as { slug: string }).slug !== 'acme') throw new Error(`served another tenant: ${context}`)
      outcomes.served++
    } else {
      assertContractError(res, context, [[404, 'TENANT_NOT_FOUND']])
      outcomes.unknown++
    }
    sql.assertNoLeak([header], mark, context)
  }, { numRuns: 3500 })
  t.comment(`hosts: ${outcomes.served} served, ${outcomes.unknown} unknown, ${outcomes.invalid} malformed; ${refusedByInject.length} refused by inject`)
  t.ok(outcomes.served > 200 && outcomes.unknown > 200 && outcomes.invalid > 200, 'every class of host was exercised')
})

t.test('a Host header that becomes a tenant host only through Unicode case folding (KELVIN SIGN for k) is malformed: 400 HOST_INVALID', async (t) => {
  const folding = fc.tuple(fc.constantFrom('kilo.test', 'www.acme.test', 'kiosk.test'), fc.nat(), decorate(fc.constant(''))).map(([host, at, tail]) => {
    const ks = [...host.matchAll(/k/g)].map((m) => m.index)
    const i = ks[at % Math.max(ks.length, 1)] ?? 0
    return `${host.slice(0, i)}\u212a${host.slice(i + 1)}${tail}`
  })
  await tally.property(t, 'Host header with KELVIN SIGN', fc.tuple(folding, fc.constantFrom(...hostUrls)), async ([header, url]) => {
    const res = await call({ url, host: header })
    if (res === null) return
    assertContractError(res, `Host ${show(header)} GET ${url}`, [[400, 'HOST_INVALID']])
  }, { numRuns: 60 })
})

t.test('over a real socket, raw Host bytes get a 4xx from the HTTP parser or the contract answer from Silo, and the server stays up', async (t) => {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port: listening } = app.server.address() as AddressInfo
  const request = (host: Buffer | null, url = '/tenant', version = '1.1'): Buffer => Buffer.concat([
    Buffer.from(`GET ${url} HTTP/${version}\r\nConnection: close\r\n`),
    ...(host === null ? [] : [Buffer.from('Host: '), host, Buffer.from('\r\n')]),
    Buffer.from('\r\n')
  ])
  const asResult = (raw: { status: number | null, headers: string, body: string }): HttpResult => ({
    statusCode: raw.status ?? 0,
    body: raw.body,
    headers: { 'content-type': /^content-type: *(.*)$/im.exec(raw.headers)?.[1]?.trim() }
  })

  for (const [host, version] of [[null, '1.1'], [null, '1.0'], [Buffer.alloc(0), '1.1'], [Buffer.from('   '), '1.1']] as const) {
    const res = asResult(await rawRequest(listening, request(host, '/tenant', version)))
    t.equal(assertContractError(res, `Host ${host === null ? 'absent' : show(host.toString('latin1'))} HTTP/${version}`, [[400, 'HOST_INVALID']]).code, 'HOST_INVALID',
      `Host ${host === null ? 'absent' : 'empty'} (HTTP/${version}) is 400 HOST_INVALID`)
  }

  // CR and LF end the header line: they change the framing of the request, not the Host value.
  const rawHost = fc.oneof(
    { weight: 3, arbitrary: hostHeader.map((h) => Buffer.from(h, 'utf8')) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)) },
    { weight: 1, arbitrary: fc.tuple(fc.mixedCase(fc.constant('acme.test')), fc.constantFrom(' ', '\t', '  \t')).map(([h, ws]) => Buffer.from(`${ws}${h}${ws}`)) }
  ).filter((bytes) => !bytes.includes(0x0d) && !bytes.includes(0x0a))
  let parserRejected = 0
  await tally.property(t, 'Host header (raw socket)', rawHost, async (bytes) => {
    const raw = await rawRequest(listening, request(bytes))
    const context = `raw Host bytes ${show(bytes.toString('latin1'))}`
    if (raw.status === null) throw new Error(`no HTTP response\n  input: ${context}`)
    // HTTP field values cannot hold control characters other than HTAB, and Node caps the
    // header section at 16 KiB (431): the parser refuses those before Silo sees them.
    if (bytes.some((b) => (b < 0x20 && b !== 0x09) || b === 0x7f) || bytes.length > 16000) {
      if (raw.status < 400 || raw.status >= 500) throw new Error(`expected a 4xx from the parser\n  input: ${context}\n  got: ${raw.status}`)
      // Refused before Fastify, yet still Silo's JSON error with a stable code.
      assertContractError(asResult(raw), context, [[400, 'VALIDATION_FAILED'], [431, 'HEADERS_TOO_LARGE']])
      parserRejected++
      return
    }
    // Node decodes header bytes as latin1 and drops surrounding whitespace.
    const header = bytes.toString('latin1').replace(/^[ \t]+|[ \t]+$/g, '')
    const host = expectedHost(header)
    const res = asResult(raw)
    if (host === null) assertContractError(res, context, [[400, 'HOST_INVALID']])
    else if (TENANT_HOSTS.has(host)) expectOk(res, 200, context)
    else if (host === silo.config.adminHost) assertContractError(res, context, [[404, 'NOT_FOUND']])
    else assertContractError(res, context, [[404, 'TENANT_NOT_FOUND']])
  }, { numRuns: 300 })
  t.comment(`raw socket: ${parserRejected} requests refused by Node's HTTP parser`)
  const alive = await rawRequest(listening, request(Buffer.from('acme.test'), '/healthz'))
  t.equal(alive.status, 200, 'the server still answers after the hostile requests')
})

// ---------------------------------------------------------------------------------------------
// JSON bodies

const FIELDS = ['title', 'body', 'published'] as const
type Mode = 'create' | 'update'
const codePoints = (s: string): number => [...s].length

/** The contract's body rules (the README's contract: title 1-200 characters, body up to 100 000; unknown keys rejected). */
function validBody (value: unknown, mode: Mode): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const o = value as Record<string, unknown>
  const keys = Object.keys(o)
  if (keys.some((k) => !(FIELDS as readonly string[]).includes(k))) return false
  if (mode === 'update' && keys.length === 0) return false
  if ((mode === 'create' || 'title' in o) && (typeof o.title !== 'string' || codePoints(o.title) < 1 || codePoints(o.title) > 200)) return false
  if ((mode === 'create' || 'body' in o) && (typeof o.body !== 'string' || codePoints(o.body) > 100000)) return false
  if ('published' in o && typeof o.published !== 'boolean') return false
  return true
}
const parsesValid = (text: string, mode: Mode): boolean => {
  try {
    return validBody(JSON.parse(text), mode)
  } catch {
    return false
  }
}

/** JSON text written by hand, so keys like `__proto__` and duplicate keys survive. */
class RawJson { constructor (readonly text: string) {} }
type Entry = readonly [string, unknown]
const jsonText = (value: unknown): string => value instanceof RawJson ? value.text : JSON.stringify(value)
const objectText = (entries: readonly Entry[]): string => `{${entries.filter(([, v]) => v !== undefined).map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`).join(',')}}`

const someTitle = fc.string({ minLength: 1, maxLength: 40 })
const someBody = fc.string({ maxLength: 80 })
const baseEntries = (mode: Mode): fc.Arbitrary<Entry[]> => mode === 'create'
  ? fc.tuple(someTitle, someBody, fc.option(fc.boolean(), { nil: undefined })).map(([title, body, published]) => [['title', title], ['body', body], ['published', published]])
  : fc.subarray<Entry>([['title', 'new title'], ['body', 'new body'], ['published', true]])
const pollution = fc.constantFrom<unknown>(
  new RawJson('{"polluted":true,"isAdmin":true}'), new RawJson('{"__proto__":{"polluted":true}}'), new RawJson('{"prototype":{"polluted":true}}'), 1, null
)
const extraKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'id', 'createdAt', 'updatedAt', 'polluted', 'isAdmin', 'toString', 'hasOwnProperty',
    '__defineGetter__', '', 'Title', ' title', 'title ', 'TITLE', 'body\u0000', 'published\u200b'),
  hostileString,
  fc.string()
).filter((k) => !(FIELDS as readonly string[]).includes(k))

interface BodyCase { kind: string, payload: string | Buffer, contentType: string | null, expect: Expected[] }
const bodyLimit = 1024 * 1024
const tooLargeOr = (payload: string | Buffer, expected: Expected): Expected[] =>
  [Buffer.byteLength(payload) > bodyLimit ? [413, 'PAYLOAD_TOO_LARGE'] : expected]
const invalidJson = (kind: string, text: string): BodyCase => ({ kind, payload: text, contentType: json, expect: tooLargeOr(text, [400, 'VALIDATION_FAILED']) })

function hostileBodies (mode: Mode): fc.Arbitrary<BodyCase> {
  const base = baseEntries(mode)
  const wrongType = fc.tuple(base, fc.constantFrom(...FIELDS), fc.jsonValue({ maxDepth: 3 })).map(([entries, field, value]) => {
    const wrong = (field === 'published' ? typeof value === 'boolean' : typeof value === 'string') ? [value] : value
    return invalidJson('wrong type', objectText([...entries.filter(([k]) => k !== field), [field, wrong]]))
  })
  const missing = base.chain((entries) => fc.constantFrom('title', 'body')
    .map((field) => invalidJson('missing field', objectText(entries.filter(([k]) => k !== field)))))
    .filter((c) => !parsesValid(c.payload as string, mode))
  const extras = fc.tuple(base, fc.array(fc.tuple(extraKey, fc.oneof(pollution, fc.jsonValue({ maxDepth: 2 }))), { minLength: 1, maxLength: 3 }), fc.nat())
    .map(([entries, more, at]) => {
      const all: Entry[] = [...entries]
      for (const entry of more) all.splice(at % (all.length + 1), 0, entry)
      return invalidJson('extra keys', objectText(all))
    })
  const nestedPollution = fc.tuple(someTitle, someBody, fc.constantFrom(
    (title: string, body: string) => `{"title":${JSON.stringify(title)},"body":${JSON.stringify(body)},"published":{"__proto__":{"polluted":true}}}`,
    (title: string, body: string) => `{"__proto__":{"title":${JSON.stringify(title)},"body":${JSON.stringify(body)}}}`,
    (title: string, body: string) => `{"constructor":{"prototype":{"polluted":true}},"title":${JSON.stringify(title)},"body":${JSON.stringify(body)}}`,
    (title: string, body: string) => `{"title":${JSON.stringify(title)},"body":${JSON.stringify(body)},"__proto__":null}`,
    (title: string, body: string) => `[{"title":${JSON.stringify(title)},"body":${JSON.stringify(body)}},{"__proto__":{"polluted":true}}]`,
    (title: string) => `{"title":{"toString":${JSON.stringify(title)},"__proto__":{"polluted":true}},"body":"x"}`
  )).map(([title, body, make]) => invalidJson('prototype keys', make(title, body)))
  const deep = fc.tuple(fc.integer({ min: 20, max: 20000 }), fc.constantFrom('array', 'object'), fc.constantFrom('title', 'published', 'extra', 'root'), fc.boolean())
    .map(([depth, shape, where, proto]) => {
      const leaf = proto ? '{"__proto__":{"polluted":true}}' : '1'
      const nested = shape === 'array' ? `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`
      if (where === 'root') return invalidJson('deep nesting', nested)
      const entries: Entry[] = [['title', 'deep'], ['body', 'deep'], [where, new RawJson(nested)]]
      return invalidJson('deep nesting', objectText(entries))
    })
  const oversize = fc.oneof(
    fc.string({ unit: 'binary', minLength: 201, maxLength: 260 }).map((title) => ['title', title] as const),
    fc.tuple(fc.integer({ min: 201, max: 5000 }), fc.constantFrom('x', 'é', '𝒜', "'")).map(([n, c]) => ['title', c.repeat(n)] as const),
    fc.tuple(fc.integer({ min: 100001, max: 300000 }), fc.constantFrom('x', 'é', '€', '𝒜', '\\')).map(([n, c]) => ['body', c.repeat(n)] as const),
    fc.tuple(fc.integer({ min: bodyLimit + 1, max: bodyLimit + 300000 }), fc.constantFrom('x', ';')).map(([n, c]) => ['body', c.repeat(n)] as const)
  ).chain(([field, value]) => base.map((entries) => invalidJson('oversize', objectText([...entries.filter(([k]) => k !== field), [field, value]]))))
  const validText = base.map((entries) => objectText(mode === 'update' && entries.length === 0 ? [['title', 't']] : entries))
  const notJson = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 60 }),
    fc.string({ maxLength: 60 }),
    fc.json({ maxDepth: 3 }),
    fc.tuple(validText, fc.nat()).map(([text, n]) => text.slice(0, n % text.length)),
    fc.tuple(validText, fc.string({ minLength: 1, maxLength: 10 }).filter((s) => s.trim() !== '')).map(([text, junk]) => text + junk),
    fc.constantFrom("{'title':'x','body':'y'}", '{"title":"x","body":"y",}', '{"title":"x"\n//c\n,"body":"y"}', 'NaN', 'Infinity', 'undefined', 'null',
      'true', '[]', '""', '0', '{"title":"x","body":"y"}{"a":1}', '{"title":"x","body":"\\x41"}', '{"title":"x","body":"y"', '{title:"x",body:"y"}', ' ', '\n',
      '{"title":"x","body":"y","published":tru}', '{"title":"x","body":"y","published":"true"}', '{"title":"x","body":"y","published":1}',
      '{"title":"x","title":5,"body":"y"}', '{"title":1e999,"body":"y"}', '{"title":"x","body":"y","published":null}', '\u0000', '{"\u0000":1}',
      '{"title":"x","body":"y"}\u0000', '%7B%22title%22%3A%22x%22%7D', 'title=x&body=y', '<xml/>')
  ).filter((text) => !text.startsWith('\ufeff') && !parsesValid(text, mode)).map((text) => invalidJson('not JSON', text))
  const badUtf8 = fc.uint8Array({ minLength: 1, maxLength: 40, min: 0x80, max: 0xff })
    .map((bytes): BodyCase => ({ kind: 'invalid UTF-8', payload: Buffer.concat([Buffer.from('{"title":'), Buffer.from(bytes), Buffer.from('}')]), contentType: json, expect: [[400, 'VALIDATION_FAILED']] }))
  const wrongContentType = fc.tuple(validText, fc.oneof(
    fc.constantFrom('text/html', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml',
      'application/octet-stream', 'application/jsonx', 'application/json-patch+json', 'application/vnd.api+json', 'json', 'text/json', '*/*', 'application/*',
      'application', '/', ';', 'application/json\u0000', 'text/javascript', 'image/png', 'application/x-json'),
    fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).filter((s) => /^[\x20-\x7e]*$/.test(s) && !/json|text\/plain/i.test(s) && s.trim() !== '')
  )).map(([text, contentType]): BodyCase => ({ kind: 'wrong content type', payload: text, contentType, expect: [[415, 'UNSUPPORTED_MEDIA_TYPE']] }))
  const noContentType = validText.map((text): BodyCase => ({ kind: 'no content type', payload: Buffer.from(text), contentType: null, expect: [[415, 'UNSUPPORTED_MEDIA_TYPE']] }))
  return fc.oneof(
    { weight: 4, arbitrary: wrongType },
    { weight: 1, arbitrary: missing },
    { weight: 4, arbitrary: extras },
    { weight: 2, arbitrary: nestedPollution },
    { weight: 1, arbitrary: deep },
    { weight: 2, arbitrary: oversize },
    { weight: 4, arbitrary: notJson },
    { weight: 1, arbitrary: badUtf8 },
    { weight: 3, arbitrary: wrongContentType },
    { weight: 1, arbitrary: noContentType },
    ...(mode === 'update' ? [{ weight: 1, arbitrary: fc.constant(invalidJson('empty patch', '{}')) }] : [])
  )
}

const bodyCheck = (method: 'POST' | 'PATCH', url: string) => async (c: BodyCase): Promise<void> => {
  const mark = sql.mark
  const res = await call({ method, url, host: 'vault.test', payload: c.payload, contentType: c.contentType })
  const context = `${method} ${url} (${c.kind}) content-type ${show(c.contentType)} body ${show(c.payload.toString(), 200)}`
  if (res === null) throw new Error(`inject refused: ${context}`)
  assertContractError(res, context, c.expect)
  assertPrototypesClean(context)
  let strings: string[] = []
  try {
    strings = stringsIn(JSON.parse(c.payload.toString()))
  } catch {}
  sql.assertNoLeak(strings, mark, context)
}

t.test('hostile POST /articles bodies are refused with stable codes and write nothing', async (t) => {
  const before = await countArticles('vault')
  await tally.property(t, 'POST /articles body', hostileBodies('create'), bodyCheck('POST', '/articles'), { numRuns: 1500 })
  t.equal(await countArticles('vault'), before, 'no article was written by a rejected request')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is not polluted')
})

t.test('hostile PATCH /articles/:id bodies are refused with stable codes and change nothing', async (t) => {
  await tally.property(t, 'PATCH /articles/:id body', hostileBodies('update'), bodyCheck('PATCH', `/articles/${vaultId}`), { numRuns: 800 })
  t.same(await articleRow('vault', vaultId), vaultSnapshot, 'the article is unchanged, updated_at included')
})

t.test('a body that is not JSON is 415 UNSUPPORTED_MEDIA_TYPE whatever its text type, text/plain included, and writes nothing', async (t) => {
  const textBody = fc.tuple(fc.oneof(fc.constant('{"title":"plain","body":"text"}'), fc.string({ maxLength: 40 }), hostileString),
    fc.mixedCase(fc.constantFrom('text/plain', 'text/plain; charset=utf-8', 'text/plain;charset=latin1', 'text/plain; format=flowed')), fc.constantFrom<'POST' | 'PATCH'>('POST', 'PATCH'))
  const before = await countArticles('vault')
  await tally.property(t, 'text/plain body', textBody, async ([text, contentType, method]) => {
    await bodyCheck(method, method === 'POST' ? '/articles' : `/articles/${vaultId}`)({ kind: 'text/plain', payload: text, contentType, expect: [[415, 'UNSUPPORTED_MEDIA_TYPE']] })
  }, { numRuns: 100 })
  t.equal(await countArticles('vault'), before, 'nothing was written')
  t.same(await articleRow('vault', vaultId), vaultSnapshot, 'the article is unchanged')
})

t.test('a NUL character in a title or body is refused with 400 VALIDATION_FAILED (PostgreSQL text cannot hold it), not a 500', async (t) => {
  const withNul = fc.tuple(fc.string({ maxLength: 30 }), fc.nat(), fc.constantFrom('title', 'body'), fc.constantFrom<'POST' | 'PATCH'>('POST', 'PATCH'))
    .map(([text, at, field, method]) => {
      const i = at % (text.length + 1)
      const value = `${text.slice(0, i)}\u0000${text.slice(i)}`
      const entries: Entry[] = method === 'POST' ? [['title', 'nul'], ['body', 'nul'], [field, value]] : [[field, value]]
      return { method, text: objectText(entries.filter(([k], idx, all) => all.findLastIndex(([k2]) => k2 === k) === idx)) }
    })
  const before = await countArticles('vault')
  await tally.property(t, 'NUL in title/body', withNul, async ({ method, text }) => {
    await bodyCheck(method, method === 'POST' ? '/articles' : `/articles/${vaultId}`)({ kind: 'NUL in a string', payload: text, contentType: json, expect: [[400, 'VALIDATION_FAILED']] })
  }, { numRuns: 200 })
  t.equal(await countArticles('vault'), before, 'nothing was written')
  t.same(await articleRow('vault', vaultId), vaultSnapshot, 'the article is unchanged')
})

t.test('valid titles and bodies full of SQL and shell metacharacters are stored verbatim and never become SQL text', async (t) => {
  const wellFormed = (s: string): boolean => !s.includes('\u0000') && !LONE_SURROGATE.test(s)
  const title = fc.oneof(
    { weight: 8, arbitrary: hostileString },
    { weight: 1, arbitrary: fc.constantFrom('𝒜'.repeat(200), "'".repeat(200), '--'.repeat(100), 'é'.repeat(200)) }
  ).filter((s) => wellFormed(s) && codePoints(s) >= 1 && codePoints(s) <= 200)
  const body = fc.oneof(
    { weight: 8, arbitrary: fc.array(hostileString, { maxLength: 6 }).map((parts) => parts.join('\n')) },
    { weight: 1, arbitrary: fc.constantFrom('𝒜'.repeat(100000), "';".repeat(50000), '') }
  ).filter(wellFormed)
  const before = await countArticles('scribe')
  let written = 0
  await tally.property(t, 'valid hostile article', fc.tuple(title, body, fc.option(fc.boolean(), { nil: undefined }), title), async ([ti, bo, published, newTitle]) => {
    const mark = sql.mark
    const context = `title ${show(ti)} body ${show(bo)} then title ${show(newTitle)}`
    const payload = JSON.stringify({ title: ti, body: bo, ...(published === undefined ? {} : { published }) })
    const created = expectOk(await call({ method: 'POST', url: '/articles', host: 'scribe.test', payload, contentType: json }), 201, context) as { id: number, title: string, body: string, published: boolean }
    written++
    if (created.title !== ti || created.body !== bo || created.published !== (published ?? false)) throw new Error(`stored differently: ${context}`)
    const read = expectOk(await call({ url: `/articles/${created.id}`, host: 'scribe.test' }), 200, context) as { title: string, body: string }
    if (read.title !== ti || read.body !== bo) throw new Error(`read back differently: ${context}`)
    const patched = expectOk(await call({ method: 'PATCH', url: `/articles/${created.id}`, host: 'scribe.test', payload: JSON.stringify({ title: newTitle }), contentType: json }), 200, context) as { title: string, body: string }
    if (patched.title !== newTitle || patched.body !== bo) throw new Error(`patched differently: ${context}`)
    sql.assertNoLeak([ti, bo, newTitle], mark, context)
  }, { numRuns: 200 })
  t.equal(await countArticles('scribe'), before + written, 'exactly the accepted articles were written')
})

// ---------------------------------------------------------------------------------------------
// Path and query parameters

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
const idText = fc.oneof(
  { weight: 2, arbitrary: fc.bigInt({ min: 1n, max: MAX_SAFE }).map(String) },
  { weight: 2, arbitrary: fc.bigInt({ min: MAX_SAFE + 1n, max: 10n ** 120n }).map(String) },
  { weight: 2, arbitrary: fc.bigInt({ min: -(10n ** 30n), max: 0n }).map(String) },
  { weight: 2, arbitrary: fc.double().map(String) },
  { weight: 1, arbitrary: fc.constantFrom('1.0', '2e0', '1e3', '0x1', '0b1', '0o7', '+1', '-0', '01', '0001', ' 1', '1 ', '1_000', '1,000', 'NaN', 'Infinity', '-Infinity', '9007199254740992', '9007199254740991.5', '1e400', '١٢', '１') },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.array(fc.oneof(fc.constantFrom('%', '%2', '%ZZ', '%00', '%2e', '%2F', '%E0%A4', '%C0%AE', '%FF', '%25'), fc.stringMatching(/^%[0-9A-Fa-f]{2}$/)), { minLength: 1, maxLength: 6 }).map((p) => p.join('')) },
  { weight: 1, arbitrary: fc.constantFrom('..', '.', '../..', '..%2f', '%2e%2e', '/', '1/2', '1?x=1', '1#x', '..;', ';1', '1;', '*', '', '~1') },
  { weight: 2, arbitrary: hostileString }
)

/** The decoded parameter the router sees, or null when the path is not valid percent-encoding. */
function routedParam (segment: string): string | null {
  try {
    return decodeURIComponent(segment.split(/[?#]/)[0] ?? '')
  } catch {
    return null
  }
}
const idCase = fc.tuple(idText, fc.constantFrom<Method>('GET', 'PATCH', 'DELETE'), fc.boolean())
  .map(([id, method, encode]) => ({ id, method, segment: encode ? encodeURIComponent(id) : id, encode }))
const idRequest = async ({ method, segment }: { method: Method, segment: string }): Promise<HttpResult | null> =>
  await call({ method, url: `/articles/${segment}`, host: 'blank.test', ...(method === 'PATCH' ? { payload: '{"title":"x"}', contentType: json } : {}) })

t.test('an /articles/:id of any text is 400 VALIDATION_FAILED or 404 NOT_FOUND, never a 5xx, and changes nothing', async (t) => {
  const canonical = /^[1-9][0-9]*$/
  // Malformed percent-encoding and parameters over the router's length limit have a property of their own below.
  const routable = idCase.filter(({ segment }) => (routedParam(segment)?.length ?? Infinity) <= 100)
  await tally.property(t, '/articles/:id', routable, async ({ id, method, segment, encode }) => {
    const mark = sql.mark
    const context = `${method} ${show(`/articles/${segment}`)}`
    const res = await idRequest({ method, segment })
    if (res === null) return
    let expected: Expected[] = [[400, 'VALIDATION_FAILED'], [404, 'NOT_FOUND']]
    if (encode && canonical.test(id)) expected = [BigInt(id) <= MAX_SAFE ? [404, 'NOT_FOUND'] : [400, 'VALIDATION_FAILED']]
    else if (encode && /^-[0-9]+$|^0+$/.test(id)) expected = [[400, 'VALIDATION_FAILED']]
    assertContractError(res, context, expected)
    sql.assertNoLeak([id], mark, context)
  }, { numRuns: 1500 })
  t.equal(await countArticles('blank'), 0, 'no article appeared')
})

t.test('a path with malformed percent-encoding or an over-long parameter is 400 VALIDATION_FAILED in the contract\'s shape', async (t) => {
  const unroutable = fc.oneof(
    fc.tuple(idText, fc.integer({ min: 101, max: 3000 }), fc.constantFrom<Method>('GET', 'PATCH', 'DELETE'))
      .map(([id, n, method]) => ({ id, method, segment: encodeURIComponent(id.padStart(n, '9')), encode: true })),
    fc.tuple(fc.constantFrom('%', '%2', '%ZZ', '%E0%A4', '%C0%AE', '%FF', '1%', '%u0031', '%%31'), fc.string({ maxLength: 5 }), fc.constantFrom<Method>('GET', 'PATCH', 'DELETE'))
      .map(([bad, tail, method]) => ({ id: bad + tail, method, segment: bad + encodeURIComponent(tail), encode: false })),
    fc.tuple(fc.bigInt({ min: 10n ** 100n, max: 10n ** 400n }), fc.constantFrom<Method>('GET', 'PATCH', 'DELETE'))
      .map(([n, method]) => ({ id: String(n), method, segment: String(n), encode: true }))
  )
    // Unroutable only if the router cannot decode it or it decodes to more than 100 characters:
    // a "malformed" head and its tail can meet in a valid escape ('1%' and '09' make "1\t").
    .filter(({ segment }) => !/[?#/]/.test(segment) && (routedParam(segment)?.length ?? Infinity) > 100)
  await tally.property(t, '/articles/:id unroutable', unroutable, async ({ method, segment }) => {
    const res = await idRequest({ method, segment })
    if (res === null) return
    assertContractError(res, `${method} ${show(`/articles/${segment}`)}`, [[400, 'VALIDATION_FAILED']])
  }, { numRuns: 100 })
  t.equal(await countArticles('blank'), 0, 'no article appeared')
})

t.test('GET /articles with any limit and cursor is a consistent page or 400 VALIDATION_FAILED, never a 5xx', async (t) => {
  const ids = await tenantDb('acme', async (db) => (await db('articles').orderBy('id', 'desc').pluck('id')).map(Number))
  const cursorFor = (text: string): string => Buffer.from(text).toString('base64url')
  /** A parameter value; `n` is what it means when the contract says exactly (null: it does not, or not simply). */
  interface Param { value: string, valid: boolean | null, n?: number }
  const limit = fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: -5, max: 150 }).map((n): Param => ({ value: String(n), valid: n >= 1 && n <= 100, n })) },
    { weight: 1, arbitrary: fc.bigInt({ min: 10n ** 15n, max: 10n ** 60n }).map((n): Param => ({ value: String(n), valid: false })) },
    { weight: 2, arbitrary: fc.oneof(fc.double().map(String), hostileString, fc.constantFrom('', ' ', '1.5', '1e1', '0x10', '10abc', 'null', 'true', '[]', '%00', '20;', '١')).map((value): Param => ({ value, valid: null })) }
  )
  const cursor = fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 1, max: ids.length + 50 }).map((n): Param => ({ value: cursorFor(`a:${n}`), valid: true, n })) },
    {
      weight: 2,
      arbitrary: fc.oneof(fc.bigInt({ min: -(10n ** 20n), max: 0n }).map((n) => `a:${n}`), fc.bigInt({ min: 10n ** 16n, max: 10n ** 40n }).map((n) => `a:${n}`),
        // A hostile string may be plain digits, and "a:<digits>" is a cursor this API issues.
        hostileString.filter((s) => !/^[1-9][0-9]{0,15}$/.test(s)).map((s) => `a:${s}`), fc.constantFrom('a:', 'a:01', 'a:1e3', 'a:1.5', 'a: 1', 'b:1', 'a:9007199254740992', 'a:99999999999999999'))
        .map((text): Param => ({ value: cursorFor(text), valid: false }))
    },
    { weight: 2, arbitrary: fc.oneof(hostileString, fc.base64String({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 30 }), fc.stringMatching(/^[A-Za-z0-9_-]{65,100}$/)).map((value): Param => ({ value, valid: null })) }
  )
  const extra = fc.array(fc.tuple(fc.oneof(hostileString, fc.constantFrom('limit', 'cursor', '__proto__', 'constructor[prototype][polluted]', 'a[]')), hostileString), { maxLength: 3 })
  const query = fc.record({ limit: fc.option(limit, { freq: 4 }), cursor: fc.option(cursor, { freq: 3 }), extra, encode: fc.boolean() })
  let pages = 0
  await tally.property(t, 'GET /articles?limit&cursor', query, async (q) => {
    const mark = sql.mark
    const enc = (s: string): string => q.encode ? encodeURIComponent(s) : s
    const parts = [
      ...(q.limit === null ? [] : [`limit=${enc(q.limit.value)}`]),
      ...(q.cursor === null ? [] : [`cursor=${enc(q.cursor.value)}`]),
      ...q.extra.map(([k, v]) => `${enc(k)}=${enc(v)}`)
    ]
    const url = `/articles?${parts.join('&')}`
    const context = `GET ${show(url, 300)}`
    const res = await call({ url })
    if (res === null) return
    // The contract decides exactly only for encoded values and no second limit or cursor.
    const plain = q.encode && !q.extra.some(([k]) => k === 'limit' || k === 'cursor')
    const limitValid = q.limit === null ? true : q.limit.valid
    const cursorValid = q.cursor === null ? true : q.cursor.valid
    const max = plain && limitValid === true ? q.limit?.n ?? 20 : undefined
    const below = plain && cursorValid === true ? q.cursor?.n ?? Infinity : undefined
    if (plain && (limitValid === false || cursorValid === false)) {
      assertContractError(res, context, [[400, 'VALIDATION_FAILED']])
    } else if (res.statusCode !== 200) {
      if (max !== undefined && below !== undefined) throw new Error(`expected 200\n  input: ${context}\n  got: ${res.statusCode} ${show(res.body, 300)}`)
      assertContractError(res, context, [[400, 'VALIDATION_FAILED']])
    } else {
      pages++
      const got = (JSON.parse(res.body) as { items: Array<{ id: number }> }).items.map((a) => a.id)
      const consistent = got.length <= (max ?? 100) && got.every((id, i) => id < (i === 0 ? below ?? Infinity : got[i - 1] ?? 0))
      if (!consistent) throw new Error(`inconsistent page\n  input: ${context}\n  got ids ${show(got)}`)
      if (max !== undefined && below !== undefined) {
        const expected = ids.filter((id) => id < below).slice(0, max)
        if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`wrong page\n  input: ${context}\n  expected ${show(expected)} got ${show(got)}`)
      }
    }
    assertPrototypesClean(context)
    sql.assertNoLeak([q.limit?.value ?? '', q.cursor?.value ?? '', ...q.extra.flat()], mark, context)
  }, { numRuns: 1500 })
  t.ok(pages > 300, `${pages} pages served`)
})

t.test('the SQL watch sees Silo\'s statements and would catch an input spliced into SQL', async (t) => {
  t.ok(sql.statements > 1000, `${sql.statements} statements watched`)
  t.ok(sql.checked > 1000, `${sql.checked} hostile inputs checked against SQL text (${sql.inBaseline} skipped: part of Silo's own SQL)`)
  const mark = sql.mark
  const spliced = "x'); DROP TABLE articles; --"
  await tenantDb('vault', async (db) => await db.raw(`select length('${spliced.replaceAll("'", "''")}') as n`))
  t.same(sql.leaks(["'); DROP TABLE articles; --"], mark), ["'); DROP TABLE articles; --"], 'a spliced input is detected')
  t.same(sql.leaks([spliced], mark), [], 'an escaped one is not the input text')
})

t.test('fuzz case count', async (t) => {
  t.comment(`fuzz-http: ${tally.total} cases in all (seed ${tally.seed})\n${tally.summary()}`)
  if (refusedByInject.length > 0) t.comment(`inject refused ${refusedByInject.length} requests, e.g. ${refusedByInject.slice(0, 3).join('; ')}`)
  t.ok(tally.total >= 9000, `${tally.total} cases`)
})
