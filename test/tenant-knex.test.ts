import t from './helpers/tap.js'
import knex, { type Knex } from 'knex'
import { knexOn } from '../src/tenancy/tenant-knex.js'
import { createTenant, testSilo } from './helpers/silo.js'

/** Every property name reachable on `object` (own and inherited), up to Function.prototype. */
function reachable (object: object): string[] {
  const names = new Set<string>()
  for (let at: object | null = object; at !== null && at !== Function.prototype; at = Object.getPrototypeOf(at) as object | null) {
    // `arguments` and `caller`: knex's function is sloppy-mode code, this module's is strict.
    for (const name of Object.getOwnPropertyNames(at)) if (name !== 'arguments' && name !== 'caller') names.add(name)
  }
  return [...names].sort()
}

t.test("a tenant pool's knex instance offers everything knex's own does", async (t) => {
  const own = knex({ client: 'pg' })
  const made = knexOn(knex({ client: 'pg' }).client)
  t.same(reachable(made), reachable(own), 'the same names: a knex upgrade that adds per-instance state shows here')
  t.equal(typeof made, 'function')
  t.ok(made instanceof Function)
  t.equal(made('articles').where({ id: 1 }).toString(), own('articles').where({ id: 1 }).toString())
  t.equal(made({ a: 'articles' }).select('a.id').toString(), own({ a: 'articles' }).select('a.id').toString())
  t.equal(made.select(made.raw('1')).toString(), own.select(own.raw('1')).toString())
  t.equal(made('articles').insert({ title: undefined, body: 'b' }).toString(), own('articles').insert({ title: undefined, body: 'b' }).toString(), 'undefined values are DEFAULT, as in knex')
  t.equal(made.ref('articles.id').toString(), own.ref('articles.id').toString())
  t.equal(made.fn.now().toString(), own.fn.now().toString())
  t.equal(made.schema.createTable('x', (table) => { table.increments() }).toString(), own.schema.createTable('x', (table) => { table.increments() }).toString())
  t.same(made.userParams, {})
  const contextOf = (db: Knex): unknown => (db as Knex & { context: unknown }).context
  t.not(contextOf(knexOn(made.client)), contextOf(made), 'each instance has a context of its own')
})

t.test("a tenant's pool queries its own database through every way knex offers", async (t) => {
  const silo = await testSilo(t)
  await createTenant(silo, 'acme')
  await createTenant(silo, 'globex')
  const [acme, globex] = await Promise.all(['acme', 'globex'].map(async (slug) => await silo.catalog.tenantBySlug(slug)))
  const leases = [acme, globex].map((tenant) => silo.pools.acquire(tenant as NonNullable<typeof tenant>))
  t.teardown(() => { for (const lease of leases) lease.release() })
  const [a, g] = leases.map((lease) => lease.db) as [Knex, Knex]
  const database = async (db: Knex): Promise<string> => (await db.raw('select current_database() as db')).rows[0].db as string

  t.match(await database(a), /acme$/)
  t.match(await database(g), /globex$/)

  const queries: Array<{ db: string, sql: string }> = []
  a.on('query', (query: { sql: string }) => { queries.push({ db: 'acme', sql: query.sql }) })
  g.on('query', (query: { sql: string }) => { queries.push({ db: 'globex', sql: query.sql }) })

  const [inserted] = await a('articles').insert({ title: 'one', body: 'first' }).returning('id') as Array<{ id: number }>
  const id = inserted?.id
  t.same(await a('articles').where({ id }).first('title'), { title: 'one' })
  t.equal(await g('articles').where({ title: 'one' }).first(), undefined, "the other tenant's database does not have it")

  await a.transaction(async (trx) => {
    await trx('articles').insert({ title: 'two', body: 'in a transaction' })
    t.match(await database(trx), /acme$/, 'a transaction runs on the same database')
  })
  await t.rejects(a.transaction(async (trx) => {
    await trx('articles').insert({ title: 'three', body: 'rolled back' })
    throw new Error('roll back')
  }), /roll back/)
  const titles = (await a('articles').orderBy('id').pluck('title')) as string[]
  t.ok(titles.includes('two') && !titles.includes('three'), 'committed and rolled back as told')

  const trx = await a.transaction()
  await trx('articles').insert({ title: 'four', body: 'held' })
  await trx.rollback()
  t.equal(await a('articles').where({ title: 'four' }).first(), undefined)

  t.equal(await a.schema.hasTable('articles'), true)
  const params = a.withUserParams({ tag: 'kept' })
  t.same(params.userParams, { tag: 'kept' })
  t.match(await database(params), /acme$/, 'a copy with user params keeps the tenant')

  t.ok(queries.some((query) => query.db === 'acme' && query.sql.includes('insert')), "the instance's query events fire")
  t.notOk(queries.some((query) => query.db === 'globex' && query.sql.includes('insert')), "one instance's listener hears none of another's queries")
})
