import { randomBytes } from 'node:crypto'
import t from './helpers/tap.js'
import { consoleSetup, logIn, openConsole, screenshot, storedToken, storeToken, unlabelledControls } from './helpers/console.js'
import { createTenant } from './helpers/silo.js'

/*
 * The operator console in a real browser (chromium, driven by playwright-core) against the real
 * app listening on a port, on a catalog of its own: the token prompt, the tenants table and its
 * actions, a tenant's page, dropping one. Every wait is on what the page shows, never on time.
 */

const setup = await consoleSetup(t)
const { silo, token } = setup
await createTenant(silo, 'cs-early')
for (const slug of ['cs-initech', 'cs-umbrella']) await createTenant(silo, slug, { domains: [`${slug.slice(3)}.example.com`, `www.${slug.slice(3)}.example.com`] })

t.test('an operator logs in with the token, creates a tenant and finds it in the table; the token never reaches the URL', async (t) => {
  const page = await openConsole(t, setup)
  await page.getByRole('heading', { name: 'Silo console' }).waitFor()
  t.same(await unlabelledControls(page), [], 'the prompt\'s input has a label')
  await logIn(page, token)
  t.equal(new URL(page.url()).hash, '#/tenants', 'the tenants page is the first')
  await page.getByRole('link', { name: 'cs-early', exact: true }).waitFor()

  await page.getByLabel('Slug', { exact: true }).fill('cs-made')
  await page.getByLabel('Name', { exact: true }).fill('Made in the console')
  await page.getByLabel('Domains').fill('cs-made.test, www.cs-made.test')
  await page.getByLabel('Seed demo articles').check()
  await page.getByRole('button', { name: 'Create tenant' }).click()
  await page.getByRole('status').filter({ hasText: 'Created cs-made on default' }).waitFor({ timeout: 60_000 })
  const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'cs-made', exact: true }) })
  await row.waitFor()
  t.match(await row.innerText(), /Made in the console[\s\S]*active[\s\S]*default[\s\S]*current[\s\S]*cs-made\.test, www\.cs-made\.test/, 'the row: name, status, server, schema current, domains')
  const created = await silo.catalog.tenantBySlug('cs-made')
  t.equal(created?.status, 'active', 'the tenant exists in the catalog, active')
  t.same(await unlabelledControls(page), [], 'every control of the tenants page has a label')
  await screenshot(page, 'tenants')

  await page.getByLabel('Search').fill('MADE')
  await page.getByRole('button', { name: 'Search', exact: true }).click()
  await page.getByRole('link', { name: 'cs-early', exact: true }).waitFor({ state: 'detached' })
  t.equal(await page.getByRole('link', { name: 'cs-made', exact: true }).count(), 1, 'the search keeps the tenant that matches')

  const stored = await storedToken(page)
  t.equal(stored, token, 'the token is in sessionStorage')
  t.notOk(page.url().includes(token), 'the token is not in the page URL')
})

t.test('the table goes a page at a time, forward and back', async (t) => {
  for (let n = 1; n <= 7; n++) await createTenant(silo, `cs-page-${n}`)
  const page = await openConsole(t, setup)
  await logIn(page, token)
  const rows = page.locator('tbody tr')
  await rows.nth(10).waitFor()
  await page.getByLabel('Per page').selectOption('10')
  // Eleven tenants: the page of ten is drawn when the eleventh row goes.
  await rows.nth(10).waitFor({ state: 'detached' })
  const first = page.getByRole('table', { name: 'Tenants, page 1' })
  const slugs = async (): Promise<string[]> => await page.locator('tbody tr td:first-child').allInnerTexts()
  const onFirst = await slugs()
  t.equal(onFirst.length, 10, 'ten rows')
  t.same(onFirst, [...onFirst].sort(), 'in slug order')
  await page.getByRole('button', { name: 'Next page' }).click()
  await page.getByRole('table', { name: 'Tenants, page 2' }).waitFor()
  const onSecond = await slugs()
  t.ok(onSecond.length >= 1 && onSecond.every((slug) => slug > (onFirst.at(-1) ?? '')), `the rest after the first page (${onSecond.join(', ')})`)
  t.ok(await page.getByRole('button', { name: 'Next page' }).isDisabled(), 'no page after the last')
  await page.getByRole('button', { name: 'Previous page' }).click()
  await first.waitFor()
  t.same(await slugs(), onFirst, 'back to the first page')
})

t.test('what the API answers is shown as text, never as markup', async (t) => {
  await silo.provisioner.create({ slug: 'cs-markup', name: '<img src=x id=injected>', domains: ['cs-markup.test'], seed: false })
  const page = await openConsole(t, setup)
  await logIn(page, token)
  await page.getByRole('cell', { name: '<img src=x id=injected>', exact: true }).waitFor()
  t.equal(await page.locator('#injected').count(), 0, 'no element made from the name')
})

t.test('suspend and resume from the table change the tenant\'s status', async (t) => {
  const page = await openConsole(t, setup)
  await logIn(page, token)
  const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'cs-early', exact: true }) })
  await row.getByRole('button', { name: 'Suspend cs-early' }).click()
  await page.getByRole('status').filter({ hasText: 'cs-early is suspended' }).waitFor()
  await row.getByText('suspended', { exact: true }).waitFor()
  t.equal((await silo.catalog.tenantBySlug('cs-early'))?.status, 'suspended', 'suspended in the catalog')
  await row.getByRole('button', { name: 'Resume cs-early' }).click()
  await page.getByRole('status').filter({ hasText: 'cs-early is active' }).waitFor()
  t.equal((await silo.catalog.tenantBySlug('cs-early'))?.status, 'active', 'active again in the catalog')
  await row.getByRole('button', { name: 'Migrate cs-early' }).click()
  await page.getByRole('status').filter({ hasText: 'cs-early: up-to-date' }).waitFor()
  t.pass('migrating one tenant answers its outcome')
})

t.test('a tenant\'s page: its domains (one added, one removed), its migration runs, its live pool figures', async (t) => {
  const page = await openConsole(t, setup)
  await logIn(page, token)
  await page.getByRole('link', { name: 'cs-early', exact: true }).click()
  await page.getByRole('heading', { level: 2, name: 'Domains' }).waitFor()
  t.equal(new URL(page.url()).hash, '#/tenants/cs-early')
  await page.locator('[data-figure="pool"]').waitFor()
  t.match(await page.locator('[data-figure="pool"]').innerText(), /^(not )?cached$/, 'the pool on this instance, cached or not')
  t.match(await page.locator('[data-figure="used"]').innerText(), /^\d+$/, 'its connections in use')
  await page.getByRole('cell', { name: 'up-to-date' }).first().waitFor()
  t.pass('the migration run of the previous test is listed')
  const history = page.getByRole('table', { name: 'What happened to it, newest first' })
  t.match(await history.innerText(), /Record last changed; status now active[\s\S]*Created/, 'its history: the last change (the suspension and resumption), then its creation')

  await page.getByLabel('New domain').fill('extra.cs-early.test')
  await page.getByRole('button', { name: 'Add domain' }).click()
  await page.getByRole('button', { name: 'Remove extra.cs-early.test' }).waitFor()
  t.same((await silo.catalog.tenantBySlug('cs-early'))?.domains.sort(), ['cs-early.test', 'extra.cs-early.test'], 'the domain is added')
  t.same(await unlabelledControls(page), [], 'every control of the tenant page has a label')
  await screenshot(page, 'tenant')
  await page.getByRole('button', { name: 'Remove extra.cs-early.test' }).click()
  await page.getByRole('button', { name: 'Remove extra.cs-early.test' }).waitFor({ state: 'detached' })
  t.same((await silo.catalog.tenantBySlug('cs-early'))?.domains, ['cs-early.test'], 'the domain is removed')

  await page.getByLabel('New domain').fill('cs-made.test')
  await page.getByRole('button', { name: 'Add domain' }).click()
  await page.getByRole('alert').filter({ hasText: /^DOMAIN_TAKEN: / }).waitFor()
  t.notMatch(await page.getByRole('alert').innerText(), /\bat .*\.js/, 'an error reads as its code and message, no stack')
})

t.test('dropping a tenant needs its slug typed again', async (t) => {
  await createTenant(silo, 'cs-gone')
  const page = await openConsole(t, setup)
  await logIn(page, token)
  await page.getByRole('link', { name: 'cs-gone', exact: true }).click()
  const drop = page.getByRole('button', { name: 'Drop cs-gone' })
  await drop.waitFor()
  t.ok(await drop.isDisabled(), 'disabled until the slug is typed')
  await page.getByLabel('Type cs-gone to confirm').fill('cs-gon')
  t.ok(await drop.isDisabled(), 'still disabled with another text')
  await page.getByLabel('Type cs-gone to confirm').fill('cs-gone')
  await drop.click()
  // DROP DATABASE waits for a checkpoint: seconds, and up to 40 s seen on a machine under a benchmark's load.
  await page.getByRole('heading', { level: 1, name: 'Tenants' }).or(page.getByRole('alert')).waitFor({ timeout: 120_000 })
  t.equal(await page.getByRole('alert').count(), 0, `no error (${await page.getByRole('alert').allInnerTexts().then((texts) => texts.join())})`)
  await page.getByRole('link', { name: 'cs-early', exact: true }).waitFor()
  t.equal(await page.getByRole('link', { name: 'cs-gone', exact: true }).count(), 0, 'gone from the table')
  t.equal(await silo.catalog.tenantBySlug('cs-gone'), null, 'gone from the catalog')
})

t.test('a wrong token shows the prompt again with the API\'s code and message, and so does a 401 later on', async (t) => {
  const page = await openConsole(t, setup)
  await page.getByLabel('Admin token').fill('not-the-token')
  await page.getByRole('button', { name: 'Open the console' }).click()
  await page.getByRole('alert').filter({ hasText: 'UNAUTHORIZED: A valid admin bearer token is required' }).waitFor()
  t.ok(await page.getByLabel('Admin token').isVisible(), 'the prompt is shown again')
  t.equal(await storedToken(page), null, 'the wrong token is forgotten')
  t.notOk(page.url().includes('not-the-token'), 'the token is not in the URL')

  await logIn(page, token)
  // The token goes stale (rotated, say) while the console is open: the next call's 401 brings the prompt back.
  await storeToken(page, 'rotated-away')
  await page.getByRole('link', { name: 'Servers' }).click()
  await page.getByRole('alert').filter({ hasText: 'UNAUTHORIZED' }).waitFor()
  t.ok(await page.getByLabel('Admin token').isVisible(), 'the prompt is back')
  t.equal(await storedToken(page), null, 'the stale token is forgotten')
})

t.test('an attached database with a schema of its own reads "own schema", in the table and on its page, not "no schema"', async (t) => {
  // A database and login role Silo did not make (no mark), named with the test's prefix so its cleanup drops them.
  const name = `${silo.config.tenantDbPrefix}own_app`
  const password = randomBytes(12).toString('hex')
  await silo.admin.knex.raw(`create role ?? login password '${password}'`, [name])
  await silo.admin.knex.raw('create database ?? owner ??', [name, name])
  const url = `postgres://${name}:${password}@${silo.server.host}:${silo.server.port}/${name}`
  await silo.attacher.attach({ slug: 'cs-own', url, domains: ['cs-own.test'], migrate: false })
  t.teardown(async () => { await silo.provisioner.drop('cs-own') })

  const page = await openConsole(t, setup)
  await logIn(page, token)
  const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'cs-own', exact: true }) })
  await row.waitFor()
  t.match(await row.innerText(), /own schema/, 'the row says its schema is its own')
  t.notMatch(await row.innerText(), /no schema|behind/, 'not that it lacks one')
  await page.getByRole('link', { name: 'cs-own', exact: true }).click()
  await page.getByRole('heading', { level: 2, name: 'Domains' }).waitFor()
  t.match(await page.locator('.schema').first().innerText(), /^own schema$/, 'and so does its page')
})
