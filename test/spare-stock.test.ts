import t from './helpers/tap.js'
import { loadConfig } from '../src/config.js'
import { listSpares, SHRINK_AFTER_MS, SpareDatabases } from '../src/lifecycle/spare-databases.js'
import { openSilo } from '../src/silo.js'
import { secondServer, serverObjects } from './helpers/servers.js'
import { testApp, testSilo, TEST_SECRET_KEY } from './helpers/silo.js'

// How many spares a server keeps follows the creates: TENANT_SPARES at rest, up to
// TENANT_SPARES_MAX while creates outrun it, and a create that finds none ready waits for the one
// being made rather than cloning its own.

t.test('creates one after another, faster than a clone: every create claims a spare, none clones its own', async (t) => {
  const { silo } = await testApp(t, { TENANT_SPARES: 1, TENANT_SPARES_MAX: 4 })
  await silo.spares?.settled()
  const sources: string[] = []
  silo.events.on('tenant:created', ({ source }) => { sources.push(source) })
  const slugs = Array.from({ length: 8 }, (_, i) => `burst${i}`)
  for (const slug of slugs) await silo.provisioner.create({ slug, domains: [`${slug}.test`] })
  t.same(sources, slugs.map(() => 'spare'), 'each found a spare ready, or waited for the one under way')
  t.ok((silo.spares?.target ?? 0) <= 4, `the target stays within TENANT_SPARES_MAX (${silo.spares?.target ?? 'none'})`)
  await silo.spares?.settled()
  const ready = await listSpares(silo.admin, silo.ownership, silo.config.tenantDbPrefix)
  t.equal(ready.length, silo.spares?.target, 'as many ready afterwards as the target')
})

t.test('the target doubles each time a claim finds the stock empty, stops at the maximum, and halves back after a quiet minute', async (t) => {
  const silo = await testSilo(t, { TENANT_SPARES: 0 })
  const { template } = silo
  if (template === undefined) return t.fail('the template is on by default')
  const prefix = silo.config.tenantDbPrefix
  let clock = 0
  const stock = new SpareDatabases({
    admin: silo.admin, catalog: silo.catalog, ownership: silo.ownership, template, prefix, target: 1, maxTarget: 4, now: () => clock
  })
  t.teardown(async () => { await stock.close() })
  const failures: Error[] = []
  silo.events.on('spares:failed', ({ error }) => { failures.push(error) })
  stock.start()
  await stock.settled()
  const latest = await template.ready()
  const count = async (): Promise<number> => (await listSpares(silo.admin, silo.ownership, prefix)).length
  t.equal(await count(), 1, 'TENANT_SPARES ready at start')

  let claimed = 0
  /** One claim more than the spares ready, all at once: exactly one finds the stock empty and waits. */
  const round = async (): Promise<Array<string | null | undefined>> => {
    const claims = Array.from({ length: stock.target + 1 }, async () => {
      const name = `${prefix}claimed${claimed++}`
      return await stock.claim(name, name, 'a-password-for-this-test-only')
    })
    const versions = await Promise.all(claims)
    await stock.settled()
    return versions
  }
  t.same(await round(), [latest, latest], 'two claims on one spare: both got one (the second waited for the one being made)')
  t.equal(stock.target, 2, 'the target doubled')
  t.equal(await count(), 2, 'two ready now')
  t.same(await round(), [latest, latest, latest])
  t.equal(stock.target, 4, 'doubled again')
  t.equal(await count(), 4)
  t.same(await round(), [latest, latest, latest, latest, latest], 'five claims on four: all got one')
  t.equal(stock.target, 4, 'TENANT_SPARES_MAX is the most')
  t.equal(await count(), 4, 'and the most made')

  const name = `${prefix}claimed${claimed++}`
  t.equal(await stock.claim(name, name, 'a-password-for-this-test-only'), latest)
  t.equal(stock.target, 4, 'a claim within a minute of the last shortage keeps the target')
  await stock.settled()
  clock += SHRINK_AFTER_MS + 1
  const later = `${prefix}claimed${claimed++}`
  t.equal(await stock.claim(later, later, 'a-password-for-this-test-only'), latest)
  t.equal(stock.target, 2, 'after a quiet minute it halves back')
  await stock.settled()
  t.equal(await count(), 3, 'spares beyond the target stay until claimed; none is made for the claim')
  t.same(failures.map((error) => error.message), [])
})

t.test('spares dropped behind the template, with the shipped defaults: nothing else goes, not the catalog, not a second catalog\'s spares on the same prefix, not the server\'s own databases', async (t) => {
  // A server of its own: the shipped names (catalog silo_catalog, prefix silo_, so the catalog's
  // name starts with the prefix) and a second catalog on the same prefix.
  const server = await secondServer(t)
  const configFor = (catalog?: string) => loadConfig({
    DATABASE_URL: server.url, SECRET_KEY: TEST_SECRET_KEY, LOG_LEVEL: 'silent', TENANT_SPARES: 2, ...(catalog === undefined ? {} : { CATALOG_DATABASE: catalog })
  }, { env: false, dotenv: false })
  const first = await openSilo(configFor())
  const b = await openSilo(configFor('silo_catalog_b'))
  t.teardown(async () => { await first.close(); await b.close() })
  t.same([first.config.catalogDatabase, first.config.tenantDbPrefix, b.config.tenantDbPrefix], ['silo_catalog', 'silo_', 'silo_'], 'the shipped defaults')
  await Promise.all([first.spares?.settled(), b.spares?.settled()])

  // Every spare of A is behind its template now, as the next start of A finds them: its first
  // claim drops them all and makes new ones.
  const stale = await listSpares(first.admin, first.ownership, 'silo_')
  t.equal(stale.length, 2)
  for (const spare of stale) await first.admin.setDatabaseComment(spare.name, first.ownership.mark('spare', '20000101000000_older'))
  await first.close()
  const a = await openSilo(configFor())
  t.teardown(async () => { await a.close() })
  const sparesB = (await listSpares(b.admin, b.ownership, 'silo_')).map((spare) => spare.name)
  t.equal(sparesB.length, 2, "B's spares, under the same prefix")
  const before = await serverObjects(server.url)

  await a.provisioner.create({ slug: 'acme', domains: ['acme.test'] })
  await Promise.all([a.spares?.settled(), b.spares?.settled()])
  const after = await serverObjects(server.url)
  const staleNames = stale.map((spare) => spare.name)
  t.same(staleNames.filter((name) => after.databases.includes(name) || after.roles.includes(name)), [], "A's stale spares and their roles are gone")
  t.same(before.databases.filter((name) => !staleNames.includes(name) && !after.databases.includes(name)), [], 'every other database is still there')
  t.same(before.roles.filter((name) => !staleNames.includes(name) && !after.roles.includes(name)), [], 'every other role too')
  for (const name of ['postgres', 'template0', 'template1', 'silo_catalog', 'silo_catalog_b', ...sparesB]) t.ok(after.databases.includes(name), `${name} is there`)
})
