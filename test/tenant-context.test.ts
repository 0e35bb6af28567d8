import t from './helpers/tap.js'
import { sealV1, storeCredential } from './helpers/credential-keys.js'
import { createTenant, testSilo } from './helpers/silo.js'

// silo.withTenant: an embedding application's job (and `tenants run`) reaches one tenant's
// database only, as that tenant's role, on a connection that is gone afterwards.
t.test('withTenant runs in the tenant database as its role, and leaves no session behind', async (t) => {
  const silo = await testSilo(t, { TENANT_SPARES: 0 })
  await createTenant(silo, 'acme', { seed: true })
  await createTenant(silo, 'globex')
  const prefix = silo.config.tenantDbPrefix

  const seen = await silo.withTenant('acme', async (db) => {
    const row = await db.first<{ user: string, database: string, application: string }>(db.raw('current_user as user'), db.raw('current_database() as database'), db.raw("current_setting('application_name') as application"))
    await db('articles').insert({ title: 'written by a job', body: '' })
    return row
  })
  t.same(seen, { user: `${prefix}acme`, database: `${prefix}acme`, application: 'silo-context:acme' }, "the tenant's own role, its own database")
  const titles = await silo.withTenant('globex', async (db) => await db('articles').pluck('title'))
  t.same(titles, [], "another tenant's context sees none of acme's rows")
  const mine = await silo.withTenant('acme', async (db) => await db('articles').where({ title: 'written by a job' }).count<Array<{ count: string }>>('* as count'))
  t.equal(Number(mine[0]?.count), 1, "the job's write is in acme's database")

  const sessions = await silo.admin.knex('pg_stat_activity').whereLike('application_name', 'silo-context:%').count<Array<{ count: string }>>('* as count')
  t.equal(Number(sessions[0]?.count), 0, 'every context connection is closed once its function is done')

  await t.rejects(silo.withTenant('acme', async () => { throw new Error('job failed') }), { message: 'job failed' }, "the function's error comes back as is")
  const after = await silo.admin.knex('pg_stat_activity').whereLike('application_name', 'silo-context:%').count<Array<{ count: string }>>('* as count')
  t.equal(Number(after[0]?.count), 0, 'and its connection is closed too')
})

t.test('withTenant refuses an unknown slug and a credential it cannot read, with the contract\'s codes', async (t) => {
  const silo = await testSilo(t, { TENANT_SPARES: 0 })
  await createTenant(silo, 'acme')
  let ran = false
  await t.rejects(silo.withTenant('nobody', async () => { ran = true }), { code: 'TENANT_NOT_FOUND', statusCode: 404 })
  // Sealed (in the format before key ids) with a key this instance does not hold.
  await storeCredential(silo, 'acme', sealV1('whatever', 'a-key-nobody-configured-here'))
  const error = await silo.withTenant('acme', async () => { ran = true }).catch((caught: unknown) => caught) as Error & { code?: string, statusCode?: number }
  t.match(error, { code: 'TENANT_UNAVAILABLE', statusCode: 503 }, 'an unreadable credential is TENANT_UNAVAILABLE, not a failed login')
  t.match(error.message, /acme/, 'naming the tenant')
  t.notOk(ran, 'the function never ran')
})
