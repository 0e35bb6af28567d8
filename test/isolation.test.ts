import t from './helpers/tap.js'
import { createTenant, testApp } from './helpers/silo.js'

const { silo, app } = await testApp(t, {}, (app) => {
  app.get('/whoami', async (request) => {
    const { rows } = await request.db.raw('select current_user as "user", current_database() as db')
    return rows[0]
  })
})
const slugs = ['acme', 'globex', 'initech']
for (const slug of slugs) await createTenant(silo, slug)

const call = async (slug: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
  await app.inject({ method, url, headers: { host: `${slug}.test` }, ...(payload === undefined ? {} : { payload }) })

/** Rows as they are in each tenant's own database, read past the HTTP layer. */
const titlesInDatabase = async (slug: string): Promise<string[]> => {
  const tenant = await silo.catalog.tenantBySlug(slug)
  if (tenant === null) throw new Error(`no tenant ${slug}`)
  return await silo.migrator.withDatabase(tenant, async (db) => await db('articles').orderBy('id').pluck('title'))
}

t.test('what acme writes is never visible to globex, through any route', async (t) => {
  const created = await call('acme', 'POST', '/articles', { title: 'acme secret', body: 'only for acme' })
  t.equal(created.statusCode, 201)
  const { id } = created.json()

  t.same((await call('globex', 'GET', '/articles')).json(), { items: [], nextCursor: null })
  t.equal((await call('globex', 'GET', `/articles/${id as number}`)).statusCode, 404)
  t.equal((await call('globex', 'PATCH', `/articles/${id as number}`, { title: 'hijacked' })).statusCode, 404)
  t.equal((await call('globex', 'DELETE', `/articles/${id as number}`)).statusCode, 404)
  t.equal((await call('globex', 'GET', '/tenant')).json().slug, 'globex')

  const acmeView = await call('acme', 'GET', `/articles/${id as number}`)
  t.match(acmeView.json(), { title: 'acme secret', body: 'only for acme' }, 'acme still has it, unchanged')
  t.same(await titlesInDatabase('acme'), ['acme secret'])
  t.same(await titlesInDatabase('globex'), [])
})

t.test('the same id in two tenants names two different articles', async (t) => {
  const globexArticle = (await call('globex', 'POST', '/articles', { title: 'globex one', body: '' })).json()
  const acmeFirst = (await call('acme', 'GET', '/articles')).json().items.at(-1)
  t.equal(globexArticle.id, acmeFirst.id, 'identity columns are per database')
  t.equal((await call('acme', 'GET', `/articles/${acmeFirst.id as number}`)).json().title, 'acme secret')
  t.equal((await call('globex', 'GET', `/articles/${acmeFirst.id as number}`)).json().title, 'globex one')
  await call('globex', 'DELETE', `/articles/${globexArticle.id as number}`)
  t.same(await titlesInDatabase('acme'), ['acme secret'], 'a delete on globex did not touch acme')
})

t.test('interleaved concurrent writes each land in their own tenant only', async (t) => {
  const perTenant = 30
  const writes = []
  for (let i = 0; i < perTenant; i++) {
    for (const slug of slugs) writes.push(call(slug, 'POST', '/articles', { title: `${slug}-${i}`, body: slug }))
  }
  const responses = await Promise.all(writes)
  t.equal(responses.filter((res) => res.statusCode !== 201).length, 0, 'no write failed')
  for (const slug of slugs) {
    const titles = (await titlesInDatabase(slug)).filter((title) => /-\d+$/.test(title))
    t.equal(titles.length, perTenant, `${slug} has all its writes`)
    t.ok(titles.every((title) => title.startsWith(`${slug}-`)), `${slug} has nothing of another tenant`)
  }
})

t.test('the pool handed to a request connects as the tenant role, to the tenant database', async (t) => {
  for (const slug of slugs) {
    const res = await call(slug, 'GET', '/whoami')
    const expected = `${silo.config.tenantDbPrefix}${slug}`
    t.same(res.json(), { user: expected, db: expected }, slug)
  }
})
