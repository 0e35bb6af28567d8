import { ApiError, api, describe, ok, onUnauthorized } from './api.js'
import { field, h, type Page } from './dom.js'
import { clearToken, readToken, saveToken } from './session.js'
import { fleetPage } from './pages/fleet.js'
import { healthPage } from './pages/health.js'
import { serversPage } from './pages/servers.js'
import { tenantPage } from './pages/tenant.js'
import { tenantsPage } from './pages/tenants.js'

/** Pages by the hash that shows them (`#/tenants/acme`): the captures are the page's parameters. */
const ROUTES: Array<[RegExp, string, Page]> = [
  [/^#\/tenants\/([a-z][a-z0-9-]{1,39})$/, 'Tenants', tenantPage],
  [/^#\/tenants$/, 'Tenants', tenantsPage],
  [/^#\/servers$/, 'Servers', serversPage],
  [/^#\/fleet(?:\/([0-9a-f-]{36}))?$/, 'Fleet', fleetPage],
  [/^#\/health$/, 'Health', healthPage]
]
const NAV = [['#/tenants', 'Tenants'], ['#/servers', 'Servers'], ['#/fleet', 'Fleet'], ['#/health', 'Health']] as const

const root = document.getElementById('app') as HTMLElement
let stopPage: (() => void) | undefined
/** Which navigation is the latest: a page that finishes drawing after the next one started is stopped at once. */
let navigations = 0

function leavePage (): void {
  stopPage?.()
  stopPage = undefined
}

/** The token prompt: shown with no token, and again after any 401 (with its code and message). */
function showPrompt (problem?: string): void {
  leavePage()
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' })
  const status = h('div', { class: 'status', 'aria-live': 'polite' }, problem === undefined ? null : h('p', { role: 'alert', class: 'error' }, problem))
  const button = h('button', { type: 'submit' }, 'Open the console')
  // method post and no action: a form sent without this script (CSP forbids it anyway) never puts the token in a URL.
  const form = h('form', { id: 'token-form', method: 'post', class: 'card' },
    h('h1', {}, 'Silo console'),
    h('p', {}, 'The admin token (ADMIN_TOKEN). It is kept in this tab only (sessionStorage) and sent as a bearer token to the admin API.'),
    field('Admin token', input), button, status)
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    saveToken(input.value)
    button.disabled = true
    // Any call proves the token; a 401 comes back here through onUnauthorized.
    ok(api.GET('/stats')).then(() => { showShell() }, (error: unknown) => {
      if (error instanceof ApiError && error.status === 401) return
      button.disabled = false
      status.replaceChildren(h('p', { role: 'alert', class: 'error' }, describe(error)))
    })
  })
  root.replaceChildren(h('main', { class: 'prompt' }, form))
  input.focus()
}

/** The header, the navigation and the current page. */
function showShell (): void {
  if (!ROUTES.some(([pattern]) => pattern.test(location.hash))) history.replaceState(null, '', '#/tenants')
  const signOut = h('button', { type: 'button', class: 'link' }, 'Sign out')
  signOut.addEventListener('click', () => { clearToken(); showPrompt() })
  const nav = h('nav', { 'aria-label': 'Pages' }, h('ul', {}, ...NAV.map(([href, text]) => h('li', {}, h('a', { href }, text)))))
  const view = h('main', { id: 'view', tabindex: '-1' })
  root.replaceChildren(h('header', {}, h('span', { class: 'brand' }, 'Silo'), nav, signOut), view)
  void route()
}

/** Draws the page of the address; after a navigation (`moveFocus`), focus goes to its heading, so a screen reader says where it is and the keyboard starts there. */
async function route (moveFocus = false): Promise<void> {
  const view = document.getElementById('view')
  if (view === null || readToken() === null) return
  leavePage()
  const navigation = ++navigations
  const found = ROUTES.map(([pattern, section, page]) => ({ match: pattern.exec(location.hash), section, page })).find(({ match }) => match !== null)
  if (found === undefined) {
    history.replaceState(null, '', '#/tenants')
    return await route(moveFocus)
  }
  for (const link of document.querySelectorAll('nav a')) {
    if (link.textContent === found.section) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
  document.title = `${found.section} · Silo console`
  // A box of its own for each navigation: a page still loading when the next one starts draws into a box no longer shown.
  const box = h('div', { class: 'page' }, h('p', { class: 'loading' }, 'Loading…'))
  view.replaceChildren(box)
  const params = (found.match?.slice(1) ?? []).filter((param): param is string => param !== undefined)
  try {
    const stop = await found.page(box, params)
    if (navigation !== navigations) {
      stop?.()
      return
    }
    stopPage = stop
    const heading = box.querySelector('h1')
    if (moveFocus && heading !== null) {
      heading.tabIndex = -1
      heading.focus()
    }
  } catch (error) {
    if (navigation !== navigations || (error instanceof ApiError && error.status === 401)) return
    box.replaceChildren(h('h1', {}, found.section), h('p', { role: 'alert', class: 'error' }, describe(error)))
  }
}

onUnauthorized((error) => { showPrompt(describe(error)) })
window.addEventListener('hashchange', () => { void route(true) })
if (readToken() === null) showPrompt()
else showShell()
