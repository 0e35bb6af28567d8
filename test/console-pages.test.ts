import t from './helpers/tap.js'
import { migrateFleet } from '../src/lifecycle/fleet-migrator.js'
import { consoleSetup, logIn, openConsole, PHONE, screenshot, unlabelledControls } from './helpers/console.js'
import { httpGet } from './helpers/server.js'
import { createTenant } from './helpers/silo.js'

/*
 * The console's other pages in a real browser against the real app: servers (drain, resume),
 * a fleet migration followed to its summary, health with its chart, a phone-width window driven
 * from the keyboard, and the console's absence on tenant hosts.
 */

const setup = await consoleSetup(t, { MIGRATE_CONCURRENCY: 1 })
const { silo, token, port } = setup
for (const slug of ['cp-good', 'cp-bad']) await createTenant(silo, slug, { domains: [`${slug}.localhost`] })

t.test('servers: the default server, reachable, drained and resumed from the page', async (t) => {
  const page = await openConsole(t, setup)
  await logIn(page, token)
  await page.getByRole('link', { name: 'Servers' }).click()
  // In the servers page's own table: until the page has changed, the tenants table's rows show a
  // cell 'default' too (their server), and a run on a loaded machine found two of them.
  const row = page.getByRole('table', { name: 'Database servers' }).getByRole('row').filter({ has: page.getByRole('cell', { name: 'default', exact: true }) })
  await row.waitFor()
  t.match(await row.innerText(), /default\s+active\s+yes\s+2\b/, 'active, reachable, its two tenants')
  await screenshot(page, 'servers')
  await row.getByRole('button', { name: 'Drain default' }).click()
  await page.getByRole('status').filter({ hasText: 'default is draining' }).waitFor()
  t.equal((await silo.serverRegistry.get('default')).server.status, 'draining', 'draining in the catalog')
  await row.getByRole('button', { name: 'Resume default' }).click()
  await page.getByRole('status').filter({ hasText: 'default is active' }).waitFor()
  t.equal((await silo.serverRegistry.get('default')).server.status, 'active', 'active again')
})

t.test('fleet: a migration started from the console is followed to its summary, failures first', async (t) => {
  // Both tenants one migration behind, and cp-bad's next one in the way of a table of its own.
  await migrateFleet(silo.catalog, silo.migrator, ['cp-good', 'cp-bad'], { direction: 'rollback', concurrency: 1 })
  const bad = await silo.catalog.tenantBySlug('cp-bad')
  if (bad === null) throw new Error('no cp-bad')
  await silo.migrator.withDatabase(bad, async (db) => { await db.raw('create table articles (id int)') })

  const page = await openConsole(t, setup)
  await logIn(page, token)
  const behind = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'cp-good', exact: true }) })
  t.match(await behind.innerText(), /no schema/, 'the tenants table shows it behind')
  await page.getByRole('link', { name: 'Fleet' }).click()
  await page.getByRole('button', { name: 'Migrate every tenant' }).click()
  await page.locator('[data-run-status="failed"]').waitFor({ timeout: 60_000 })
  t.match(new URL(page.url()).hash, /^#\/fleet\/[0-9a-f-]{36}$/, 'the run\'s page is its own address')
  t.match(await page.locator('.summary').innerText(), /2 tenants: 1 migrated, 0 up to date, 0 skipped, 1 failed/, 'the summary')
  const results = page.getByRole('table', { name: 'Tenant results, failures first' }).getByRole('row')
  t.match(await results.nth(1).innerText(), /^cp-bad\s+failed/, 'the failure comes first')
  t.match(await results.nth(2).innerText(), /^cp-good\s+migrated/, 'then the tenant migrated')
  t.equal(await page.getByLabel(/2 of 2 tenants, 1 failed/).getAttribute('value'), '2', 'the progress bar is full')
  await screenshot(page, 'fleet')
  t.equal((await silo.catalog.tenantBySlug('cp-good'))?.schemaVersion, await silo.migrator.latestVersion(), 'cp-good is on the newest schema')
  await silo.migrator.withDatabase(bad, async (db) => { await db.raw('drop table articles') })
})

t.test('health: the catalog feed, the budget, the host cache and requests by outcome, charted from samples', async (t) => {
  const page = await openConsole(t, setup)
  await logIn(page, token)
  // A served request and a refused one, so the counters have something to show.
  t.equal((await httpGet(port, 'cp-good.localhost', '/articles')).status, 200)
  t.equal((await httpGet(port, 'nobody.localhost', '/articles')).status, 404)
  await page.getByRole('link', { name: 'Health' }).click()
  await page.locator('[data-figure="feed"]').waitFor()
  t.match(await page.locator('[data-figure="feed"]').innerText(), /^(not )?connected$/)
  t.match(await page.locator('[data-figure="budget"]').innerText(), /^\d+ \/ \d+/, 'the budget in use against its capacity')
  t.match(await page.locator('[data-figure="hit-ratio"]').innerText(), /^\d+\.\d %$/, 'a hit ratio, since requests were made')
  t.match(await page.locator('[data-figure="turns"]').innerText(), /^\d+ now; since start \d+ left before their turn, \d+ timed out$/, 'requests waiting their turn, and those that never got it')
  t.match(await page.getByRole('row').filter({ hasText: 'not found' }).innerText(), /not found\s+[1-9]/, 'the refusal is counted')
  // The rates need two samples: the chart's lines appear with the second ('attached': a flat line has no height to be visible by).
  await page.locator('svg.chart polyline.served').waitFor({ state: 'attached' })
  t.equal(await page.locator('svg.chart polyline').count(), 3, 'served, refused and connections open')
  await screenshot(page, 'health')
})

t.test('at phone width, from the keyboard alone: log in, move between pages, nothing wider than the window', async (t) => {
  const page = await openConsole(t, setup, PHONE)
  await page.getByLabel('Admin token').fill(token)
  await page.keyboard.press('Enter')
  await page.getByRole('heading', { level: 1, name: 'Tenants' }).waitFor()
  await page.getByRole('link', { name: 'cp-good', exact: true }).waitFor()
  const width = async (): Promise<number> => await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth)
  t.ok(await width() <= PHONE.width, `the tenants page fits ${PHONE.width} px (${await width()})`)
  await screenshot(page, 'tenants-phone')
  // Tab to the Fleet link and follow it with Enter.
  const fleet = page.getByRole('link', { name: 'Fleet' })
  for (let tabs = 0; tabs < 10 && !await fleet.evaluate((link) => link === (link.ownerDocument as { activeElement: unknown }).activeElement); tabs++) await page.keyboard.press('Tab')
  await page.keyboard.press('Enter')
  await page.getByRole('button', { name: 'Migrate every tenant' }).waitFor()
  t.equal(new URL(page.url()).hash, '#/fleet', 'the link followed from the keyboard')
  await page.locator('h1:focus').waitFor()
  t.equal(await page.locator('h1:focus').innerText(), 'Fleet', 'focus moves to the new page\'s heading')
  t.same(await unlabelledControls(page), [], 'every control has a label')
  t.ok(await width() <= PHONE.width, 'the fleet page fits too')
})

t.test('the console is on the admin host only: a tenant host answers 404', async (t) => {
  const page = await openConsole(t, setup)
  const answer = await page.goto(`http://cp-good.localhost:${port}/console`)
  t.equal(answer?.status(), 404, '404 on a tenant host')
  const admin = await page.goto(setup.url)
  t.equal(admin?.status(), 200, '200 on the admin host')
  t.match(admin?.headers()['content-security-policy'] ?? '', /script-src 'self'/, 'with its CSP')
})
