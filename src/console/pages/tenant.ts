import { api, ok } from '../api.js'
import type { paths } from '../api-types.js'
import { act, every, field, h, statusLine, table, when, type Page } from '../dom.js'
import { schemaCell } from './schema-version.js'

type Tenant = paths['/tenants/{slug}']['get']['responses']['200']['content']['application/json']
type Move = paths['/tenants/{slug}/moves']['get']['responses']['200']['content']['application/json']['items'][number]

/**
 * One tenant: what the catalog holds of it, its domains, its last migration runs and its pool on
 * this instance (refreshed every 2 s), with its actions; dropping it needs its slug typed again.
 */
export const tenantPage: Page = async (view, [slug = '']) => {
  const status = statusLine()
  const path = { slug }
  const [tenant, stats, runs, moves] = await Promise.all([
    ok(api.GET('/tenants/{slug}', { params: { path } })),
    ok(api.GET('/stats')),
    ok(api.GET('/tenants/{slug}/migrations', { params: { path } })),
    ok(api.GET('/tenants/{slug}/moves', { params: { path } }))
  ])
  // After a change the page is drawn again from the API; each drawing's live figures stop by themselves once their element has left the page.
  const redraw = async (): Promise<void> => { await tenantPage(view, [slug]) }

  const live = h('dl', { class: 'figures', 'aria-live': 'off' })
  const stopLive = every(2000, live, async () => {
    const pool = await ok(api.GET('/tenants/{slug}/pool', { params: { path } }))
    live.replaceChildren(
      h('dt', {}, 'Pool on this instance'), h('dd', { 'data-figure': 'pool' }, pool.cached ? 'cached' : 'not cached'),
      h('dt', {}, 'Connections in use'), h('dd', { 'data-figure': 'used' }, pool.connections.used),
      h('dt', {}, 'Connections idle'), h('dd', {}, pool.connections.free),
      h('dt', {}, 'Requests waiting'), h('dd', {}, pool.connections.pending),
      h('dt', {}, 'Requests holding it'), h('dd', {}, pool.leases))
  })

  const toggle = h('button', { type: 'button' }, tenant.status === 'suspended' ? 'Resume' : 'Suspend')
  toggle.disabled = tenant.status !== 'active' && tenant.status !== 'suspended'
  toggle.addEventListener('click', () => {
    void act(toggle, status, async () => {
      await ok(api.POST(tenant.status === 'suspended' ? '/tenants/{slug}/resume' : '/tenants/{slug}/suspend', { params: { path } }))
      await redraw()
      return undefined
    })
  })
  const migrate = h('button', { type: 'button' }, 'Migrate now')
  migrate.addEventListener('click', () => {
    void act(migrate, status, async () => {
      // The outcome shows in the runs table, drawn again.
      await ok(api.POST('/tenants/{slug}/migrate', { params: { path } }))
      await redraw()
      return undefined
    })
  })

  view.replaceChildren(
    h('h1', {}, `${tenant.name} `, h('small', {}, tenant.slug)),
    h('p', { class: 'actions' }, h('a', { href: '#/tenants' }, '← All tenants'), toggle, migrate),
    status.element,
    h('div', { class: 'columns' },
      h('section', { 'aria-labelledby': 'about' }, h('h2', { id: 'about' }, 'Tenant'), about(tenant, stats.newestSchemaVersion)),
      h('section', { 'aria-labelledby': 'live' }, h('h2', { id: 'live' }, 'Live'), live)),
    h('section', { 'aria-labelledby': 'domains' }, h('h2', { id: 'domains' }, 'Domains'), domains(tenant, status, redraw)),
    h('section', { 'aria-labelledby': 'history' }, h('h2', { id: 'history' }, 'History'), history(tenant, moves.items)),
    h('section', { 'aria-labelledby': 'runs' }, h('h2', { id: 'runs' }, 'Last migration runs'),
      runs.items.length === 0
        ? h('p', {}, 'None recorded.')
        : table('Migration attempts, newest first', ['Finished', 'Status', 'Before', 'After', 'Applied', 'Duration', 'Error'],
          runs.items.map((run) => [when(run.finishedAt), h('span', { class: `badge ${run.status}` }, run.status), run.before ?? '—', run.after ?? '—', run.applied.length, `${run.durationMs} ms`, run.error ?? '']))),
    dropForm(tenant, status))
  return () => { stopLive() }
}

function about (tenant: Tenant, newest: string | null): HTMLElement {
  return h('dl', { class: 'figures' },
    h('dt', {}, 'Status'), h('dd', {}, h('span', { class: `badge ${tenant.status}` }, tenant.status)),
    // The catalog keeps a tenant's status and when its record last changed, not a history of statuses.
    h('dt', {}, 'Last changed'), h('dd', {}, when(tenant.updatedAt)),
    h('dt', {}, 'Created'), h('dd', {}, when(tenant.createdAt)),
    h('dt', {}, 'Server'), h('dd', {}, tenant.server ?? '—'),
    h('dt', {}, 'Database'), h('dd', {}, tenant.database, tenant.attached ? ' (attached)' : ''),
    h('dt', {}, 'Schema'), h('dd', {}, schemaCell(tenant.schemaVersion, newest, tenant.schemaManaged)))
}

/**
 * What the catalog knows of the tenant's past: its creation, its moves between servers, and when
 * its record last changed (its status then is its status now: no history of statuses is kept).
 */
function history (tenant: Tenant, moves: Move[]): HTMLElement {
  const events: Array<[string, string]> = [
    [tenant.createdAt, 'Created'],
    ...moves.map((move): [string, string] => [move.startedAt, `Move from ${move.from} to ${move.to}: ${move.phase}${move.error === null ? '' : ` (${move.error})`}`])
  ]
  if (tenant.updatedAt !== tenant.createdAt) events.push([tenant.updatedAt, `Record last changed; status now ${tenant.status}`])
  events.sort(([a], [b]) => b.localeCompare(a))
  return table('What happened to it, newest first', ['When', 'What'], events.map(([at, what]) => [when(at), what]))
}

function domains (tenant: Tenant, status: ReturnType<typeof statusLine>, redraw: () => Promise<void>): HTMLElement {
  const path = { slug: tenant.slug }
  const list = h('ul', { class: 'domains' }, ...tenant.domains.map((domain) => {
    const remove = h('button', { type: 'button', 'aria-label': `Remove ${domain}` }, 'Remove')
    remove.addEventListener('click', () => {
      void act(remove, status, async () => {
        await ok(api.DELETE('/tenants/{slug}/domains/{domain}', { params: { path: { ...path, domain } } }))
        await redraw()
        return undefined
      })
    })
    return h('li', {}, domain, domain === tenant.primaryDomain ? h('span', { class: 'badge' }, 'primary') : null, ' ', remove)
  }))
  const input = h('input', { name: 'domain', required: true, autocomplete: 'off' })
  const add = h('button', { type: 'submit' }, 'Add domain')
  const form = h('form', { class: 'inline' }, field('New domain', input), add)
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void act(add, status, async () => {
      await ok(api.POST('/tenants/{slug}/domains', { params: { path }, body: { domain: input.value.trim() } }))
      await redraw()
      return undefined
    })
  })
  return h('div', {}, list, form)
}

/** Dropping needs the slug typed again; an attached tenant is only forgotten unless its database is named too. */
function dropForm (tenant: Tenant, status: ReturnType<typeof statusLine>): HTMLElement {
  const confirm = h('input', { name: 'confirm-slug', autocomplete: 'off', spellcheck: 'false' })
  const dropDatabase = h('input', { type: 'checkbox', name: 'drop-database', id: 'drop-database' })
  const button = h('button', { type: 'submit', class: 'danger' }, `Drop ${tenant.slug}`)
  button.disabled = true
  confirm.addEventListener('input', () => { button.disabled = confirm.value !== tenant.slug })
  const form = h('form', { class: 'card danger-zone', 'aria-labelledby': 'drop-title' },
    h('h2', { id: 'drop-title' }, 'Drop'),
    h('p', {}, tenant.attached ? 'Forgets this attached tenant (its entry and domains); its database stays unless named below.' : 'Drops its database, its role and its catalog entry. This cannot be undone.'),
    field(`Type ${tenant.slug} to confirm`, confirm),
    tenant.attached ? h('div', { class: 'field check' }, dropDatabase, h('label', { for: 'drop-database' }, 'Drop its database too')) : null,
    button)
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    if (confirm.value !== tenant.slug) return
    void act(button, status, async () => {
      await ok(api.DELETE('/tenants/{slug}', { params: { path: { slug: tenant.slug }, query: tenant.attached && dropDatabase.checked ? { dropDatabase: true } : {} } }))
      location.hash = '#/tenants'
      return undefined
    })
  })
  return form
}
