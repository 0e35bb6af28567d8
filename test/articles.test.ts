import t from './helpers/tap.js'
import { createTenant, testApp } from './helpers/silo.js'

const { silo, app } = await testApp(t)
await createTenant(silo, 'acme')
const host = 'acme.test'

const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = {}) =>
  await app.inject({ method, url, headers: { host, ...headers }, ...(payload === undefined ? {} : { payload: payload as object }) })

t.test('an article goes through create, read, update, list and delete', async (t) => {
  const created = await call('POST', '/articles', { title: 'First', body: 'Hello' })
  t.equal(created.statusCode, 201)
  const article = created.json()
  t.match(article, { id: Number, title: 'First', body: 'Hello', published: false, createdAt: String, updatedAt: String })
  t.ok(!Number.isNaN(Date.parse(article.createdAt)))

  t.same((await call('GET', `/articles/${article.id}`)).json(), article)

  const patched = await call('PATCH', `/articles/${article.id}`, { published: true, title: 'First!' })
  t.equal(patched.statusCode, 200)
  t.match(patched.json(), { id: article.id, title: 'First!', body: 'Hello', published: true })
  t.ok(Date.parse(patched.json().updatedAt) >= Date.parse(article.updatedAt))

  const listed = await call('GET', '/articles')
  t.equal(listed.statusCode, 200)
  t.same(listed.json().items.map((a: { id: number }) => a.id), [article.id])
  t.equal(listed.json().nextCursor, null)

  t.equal((await call('DELETE', `/articles/${article.id}`)).statusCode, 204)
  const gone = await call('GET', `/articles/${article.id}`)
  t.equal(gone.statusCode, 404)
  t.equal(gone.json().code, 'NOT_FOUND')
  t.equal((await call('DELETE', `/articles/${article.id}`)).statusCode, 404)
  t.equal((await call('PATCH', `/articles/${article.id}`, { title: 'x' })).statusCode, 404)
})

t.test('the list is newest first and its cursor walks every article exactly once', async (t) => {
  const ids: number[] = []
  for (let i = 0; i < 7; i++) ids.push((await call('POST', '/articles', { title: `a${i}`, body: '' })).json().id)
  const seen: number[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const res = await call('GET', `/articles?limit=3${cursor === null ? '' : `&cursor=${cursor}`}`)
    t.equal(res.statusCode, 200)
    const page = res.json() as { items: Array<{ id: number }>, nextCursor: string | null }
    t.ok(page.items.length <= 3)
    seen.push(...page.items.map((a) => a.id))
    cursor = page.nextCursor
    pages++
  } while (cursor !== null && pages < 10)
  t.equal(pages, 3)
  t.same(seen, [...ids].reverse())
  const all = await call('GET', '/articles')
  t.equal(all.json().items.length, 7, 'default limit 20 returns all seven')
})

t.test('invalid bodies are 400 VALIDATION_FAILED and change nothing', async (t) => {
  const before = (await call('GET', '/articles?limit=100')).json().items.length
  const bodies: unknown[] = [
    {},
    { title: '', body: 'x' },
    { title: 'x'.repeat(201), body: 'x' },
    { title: 'ok', body: 'x'.repeat(100001) },
    { title: 123, body: 'x' },
    { title: 'ok', body: 'x', published: 'yes' },
    { title: 'ok', body: 'x', published: 1 },
    { title: 'ok', body: null },
    { title: 'ok', body: 'x', extra: true },
    ['title', 'body'],
    'just a string'
  ]
  for (const body of bodies) {
    const res = await call('POST', '/articles', JSON.stringify(body), { 'content-type': 'application/json' })
    t.equal(res.statusCode, 400, JSON.stringify(body).slice(0, 60))
    t.match(res.json(), { statusCode: 400, code: 'VALIDATION_FAILED', error: 'Bad Request', message: String })
  }
  for (const raw of ['{"title":', '{"title":"x","body":"y","__proto__":{"polluted":true}}', '']) {
    const res = await call('POST', '/articles', raw, { 'content-type': 'application/json' })
    t.equal(res.statusCode, 400, raw)
    t.equal(res.json().code, 'VALIDATION_FAILED', raw)
  }
  const wrongType = await call('POST', '/articles', 'title=x', { 'content-type': 'application/x-www-form-urlencoded' })
  t.equal(wrongType.statusCode, 415)
  t.equal(wrongType.json().code, 'UNSUPPORTED_MEDIA_TYPE')
  t.equal((await call('GET', '/articles?limit=100')).json().items.length, before)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('invalid updates are 400 VALIDATION_FAILED', async (t) => {
  const { id } = (await call('POST', '/articles', { title: 'keep', body: 'me' })).json()
  for (const body of [{}, { title: '' }, { published: 'true' }, { id: 5 }, { createdAt: 'now' }]) {
    const res = await call('PATCH', `/articles/${id as number}`, body)
    t.equal(res.statusCode, 400, JSON.stringify(body))
    t.equal(res.json().code, 'VALIDATION_FAILED')
  }
  t.match((await call('GET', `/articles/${id as number}`)).json(), { title: 'keep', body: 'me' })
})

t.test('invalid ids and query strings are 400 VALIDATION_FAILED', async (t) => {
  const urls = ['/articles/abc', '/articles/0', '/articles/-1', '/articles/1.5', '/articles/99999999999999999999',
    '/articles?limit=0', '/articles?limit=101', '/articles?limit=abc', '/articles?cursor=!!!', '/articles?cursor=Zm9v',
    `/articles?cursor=${Buffer.from('a:99999999999999999').toString('base64url')}`]
  for (const url of urls) {
    const res = await call('GET', url)
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, 'VALIDATION_FAILED', url)
  }
  for (const url of ['/articles/abc', '/articles/0']) {
    t.equal((await call('DELETE', url)).statusCode, 400, `DELETE ${url}`)
    t.equal((await call('PATCH', url, { title: 'x' })).statusCode, 400, `PATCH ${url}`)
  }
  t.equal((await call('GET', '/articles/9007199254740991')).statusCode, 404, 'largest safe id is just not found')
})

t.test('an oversized body is 413 PAYLOAD_TOO_LARGE', async (t) => {
  const res = await call('POST', '/articles', JSON.stringify({ title: 'big', body: 'x'.repeat(2 * 1024 * 1024) }), { 'content-type': 'application/json' })
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'PAYLOAD_TOO_LARGE')
})

t.test('a seeded tenant lists its demo articles, welcome first', async (t) => {
  await createTenant(silo, 'seeded', { seed: true })
  const res = await app.inject({ url: '/articles', headers: { host: 'seeded.test' } })
  t.equal(res.statusCode, 200)
  const items = res.json().items as Array<{ title: string, body: string }>
  t.equal(items.length, 5)
  t.equal(items[0]?.title, 'Welcome to Silo')
  t.match(items[0]?.body, silo.config.tenantDbPrefix + 'seeded')
})
