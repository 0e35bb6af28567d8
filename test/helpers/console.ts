import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { Silo } from '../../src/silo.js'
import { root } from './paths.js'
import { testApp, type Teardown } from './silo.js'

/** Debian's chromium (`.ci/run` installs it when missing); CHROMIUM_PATH names another. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const SCREENSHOTS = join(root, 'test-output/console')
export const DESKTOP = { width: 1280, height: 800 }
export const PHONE = { width: 390, height: 844 }

export interface ConsoleSetup {
  silo: Silo
  app: FastifyInstance
  browser: Browser
  /** The console's address on the admin host. */
  url: string
  port: number
  token: string
}

/**
 * A Silo (catalog of its own) whose real app listens on a port of 127.0.0.1, and chromium to
 * drive its console on the admin host. The admin host is the shipped `admin.localhost`, which
 * chromium maps to 127.0.0.1 (the rule makes it so whatever resolver the machine has). The
 * browser is closed in teardown before the app and the databases (tap runs teardowns in order).
 */
export async function consoleSetup (t: Teardown, env: Record<string, string | number> = {}): Promise<ConsoleSetup> {
  const token = randomBytes(24).toString('hex')
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--host-resolver-rules=MAP *.localhost 127.0.0.1']
  })
  t.teardown(async () => { await browser.close() })
  const { silo, app } = await testApp(t, { ADMIN_TOKEN: token, ADMIN_HOST: 'admin.localhost', ...env })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { silo, app, browser, url: `http://admin.localhost:${port}/console`, port, token }
}

/** A new tab (its own sessionStorage) at the console, of the given size; closed in teardown, even after a failure. */
export async function openConsole (t: Teardown, setup: ConsoleSetup, viewport = DESKTOP): Promise<Page> {
  const context = await setup.browser.newContext({ viewport })
  t.teardown(async () => { await context.close() })
  const page = await context.newPage()
  await page.goto(setup.url)
  return page
}

/** Types the token into the prompt and waits for the tenants page. */
export async function logIn (page: Page, token: string): Promise<void> {
  await page.getByLabel('Admin token').fill(token)
  await page.getByRole('button', { name: 'Open the console' }).click()
  await page.getByRole('heading', { level: 1, name: 'Tenants' }).waitFor()
}

/** test-output/console/<name>.png (gitignored; docs/console.png is one of them, copied by hand). */
export async function screenshot (page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })
}

/** What the tests read in the page: the tests are compiled without the DOM's types (Node code). */
interface InPage {
  sessionStorage: { getItem: (key: string) => string | null, setItem: (key: string, value: string) => void }
  document: { querySelectorAll: (selector: string) => ArrayLike<{ labels: ArrayLike<unknown> | null, getAttribute: (name: string) => string | null, outerHTML: string }> }
}

/** The token the console holds in sessionStorage, or null. */
export async function storedToken (page: Page): Promise<string | null> {
  return await page.evaluate(() => (globalThis as unknown as InPage).sessionStorage.getItem('silo.adminToken'))
}

/** Puts another token where the console keeps it (one rotated away, say). */
export async function storeToken (page: Page, token: string): Promise<void> {
  await page.evaluate((value) => { (globalThis as unknown as InPage).sessionStorage.setItem('silo.adminToken', value) }, token)
}

/** Controls of the page that no label names (an empty list is what accessibility wants). */
export async function unlabelledControls (page: Page): Promise<string[]> {
  return await page.evaluate(() => Array.from((globalThis as unknown as InPage).document.querySelectorAll('input, select, textarea'))
    .filter((control) => (control.labels?.length ?? 0) === 0 && control.getAttribute('aria-label') === null)
    .map((control) => control.outerHTML))
}
