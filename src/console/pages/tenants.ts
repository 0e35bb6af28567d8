import { api, ok } from '../api.js'
import type { paths } from '../api-types.js'
import { act, field, h, statusLine, table, when, type Page } from '../dom.js'
import { schemaCell } from './schema-version.js'

type Tenant = paths['/tenants']['get']['responses']['200']['content']['application/json']['items'][number]
type Stats = paths['/stats']['get']['responses']['200']['content']['application/json']

const PAGE_SIZES = [10, 20, 50, 100]
const STATUSES = ['', 'active', 'suspended', 'provisioning', 'failed', 'dropping'] as const

/** Tenants: a search, one page of the table at a time, the actions of each row, and a form to create one. */
export const tenantsPage: Page = async (view) => {
  const status = statusLine()
  const search = h('input', { type: 'search', name: 'search', maxlength: '200' })
  const statusFilter = h('select', { name: 'status' }, ...STATUSES.map((value) => h('option', { value }, value === '' ? 'any' : value)))
  const perPage = h('select', { name: 'limit' }, ...PAGE_SIZES.map((size) => h('option', { value: size, selected: size === 20 }, size)))
  const results = h('div', { class: 'results' })
  const previous = h('button', { type: 'button' }, 'Previous page')
  const next = h('button', { type: 'button' }, 'Next page')
  // The cursors of the pages before this one: the first page has none.
  const cursors: Array<string | undefined> = [undefined]
  let nextCursor: string | null = null
  const stats = await ok(api.GET('/stats'))

  const load = async (): Promise<void> => {
    const query = { limit: Number(perPage.value), cursor: cursors.at(-1), search: search.value.trim() || undefined, status: statusFilter.value === '' ? undefined : statusFilter.value as Tenant['status'] }
    const page = await ok(api.GET('/tenants', { params: { query } }))
    nextCursor = page.nextCursor
    previous.disabled = cursors.length === 1
    next.disabled = nextCursor === null
    results.replaceChildren(page.items.length === 0
      ? h('p', {}, 'No tenant matches.')
      : table(`Tenants, page ${cursors.length}`, ['Slug', 'Name', 'Status', 'Server', 'Schema', 'Domains', 'Created', 'Actions'],
        page.items.map((tenant) => row(tenant, stats))))
  }
  const reload = async (): Promise<void> => { await load().catch((error: unknown) => { status.fail(error) }) }

  const row = (tenant: Tenant, stats: Stats): Array<Node | string> => {
    const toggle = tenant.status === 'suspended' ? 'resume' : 'suspend'
    const toggleButton = h('button', { type: 'button', 'aria-label': `${toggle === 'suspend' ? 'Suspend' : 'Resume'} ${tenant.slug}` }, toggle === 'suspend' ? 'Suspend' : 'Resume')
    toggleButton.disabled = tenant.status !== 'active' && tenant.status !== 'suspended'
    toggleButton.addEventListener('click', () => {
      void act(toggleButton, status, async () => {
        const path = toggle === 'suspend' ? '/tenants/{slug}/suspend' : '/tenants/{slug}/resume'
        const changed = await ok(api.POST(path, { params: { path: { slug: tenant.slug } } }))
        await load()
        return `${changed.slug} is ${changed.status}`
      })
    })
    const migrate = h('button', { type: 'button', 'aria-label': `Migrate ${tenant.slug}` }, 'Migrate')
    migrate.addEventListener('click', () => {
      void act(migrate, status, async () => {
        const run = await ok(api.POST('/tenants/{slug}/migrate', { params: { path: { slug: tenant.slug } } }))
        await load()
        return `${run.slug}: ${run.status}${run.error === null ? '' : ` (${run.error})`}`
      })
    })
    return [
      h('a', { href: `#/tenants/${tenant.slug}` }, tenant.slug),
      tenant.name,
      h('span', { class: `badge ${tenant.status}` }, tenant.status),
      tenant.server ?? '—',
      schemaCell(tenant.schemaVersion, stats.newestSchemaVersion, tenant.schemaManaged),
      tenant.domains.join(', '),
      when(tenant.createdAt),
      h('span', { class: 'actions' }, toggleButton, migrate)
    ]
  }

  previous.addEventListener('click', () => { cursors.pop(); void reload() })
  next.addEventListener('click', () => {
    if (nextCursor === null) return
    cursors.push(nextCursor)
    void reload()
  })
  const filters = h('form', { class: 'inline', role: 'search' }, field('Search', search, 'slug, name or domain'), field('Status', statusFilter), field('Per page', perPage), h('button', { type: 'submit' }, 'Search'))
  filters.addEventListener('submit', (event) => {
    event.preventDefault()
    cursors.splice(1)
    void reload()
  })
  perPage.addEventListener('change', () => { cursors.splice(1); void reload() })

  view.replaceChildren(
    h('h1', {}, 'Tenants'),
    filters,
    status.element,
    results,
    h('div', { class: 'pager' }, previous, next),
    createForm(status, async () => { cursors.splice(1); await load() })
  )
  await load()
  return undefined
}

/** Create a tenant: slug, name, domains, seed, server (placement when none is named). */
function createForm (status: ReturnType<typeof statusLine>, created: () => Promise<void>): HTMLElement {
  const slug = h('input', { name: 'slug', required: true, pattern: '[a-z][a-z0-9\\-]{1,39}', autocomplete: 'off' })
  const name = h('input', { name: 'name', autocomplete: 'off' })
  const domains = h('input', { name: 'domains', required: true, autocomplete: 'off' })
  const seed = h('input', { type: 'checkbox', name: 'seed' })
  const server = h('select', { name: 'server' }, h('option', { value: '' }, 'placement chooses'))
  // GET /servers probes every server: the table does not wait for it, and without it placement still chooses.
  ok(api.GET('/servers')).then(({ items }) => { server.append(...items.map(({ name: value }) => h('option', { value }, value))) }, () => {})
  const submit = h('button', { type: 'submit' }, 'Create tenant')
  const form = h('form', { class: 'card', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, 'Create a tenant'),
    field('Slug', slug, '2-40 of a-z, 0-9 and -, starting with a letter'),
    field('Name', name, 'the slug when empty'),
    field('Domains', domains, 'separated by spaces or commas; the first is primary'),
    h('div', { class: 'field check' }, seed, h('label', { for: (seed.id = 'create-seed') }, 'Seed demo articles')),
    field('Server', server),
    submit)
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void act(submit, status, async () => {
      const tenant = await ok(api.POST('/tenants', {
        body: {
          slug: slug.value.trim(),
          domains: domains.value.split(/[\s,]+/).filter((domain) => domain !== ''),
          seed: seed.checked,
          ...(name.value.trim() === '' ? {} : { name: name.value.trim() }),
          ...(server.value === '' ? {} : { server: server.value })
        }
      }))
      form.reset()
      await created()
      return `Created ${tenant.slug} on ${tenant.server ?? 'its own host'}`
    })
  })
  return form
}
