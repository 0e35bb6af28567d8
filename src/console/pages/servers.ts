import { api, ok } from '../api.js'
import { act, h, statusLine, table, type Page } from '../dom.js'

const bytes = (value: number | null): string => value === null ? '—' : `${(value / 1024 / 1024).toFixed(1)} MB`

/**
 * The server registry: each server probed now (reachable, sessions on its tenant databases),
 * its tenants against its limit, its budget against what this instance has open there; drain
 * and resume.
 */
export const serversPage: Page = async (view) => {
  const status = statusLine()
  const results = h('div', { class: 'results' })
  const load = async (): Promise<void> => {
    const [servers, stats] = await Promise.all([ok(api.GET('/servers')), ok(api.GET('/stats'))])
    const budgets = new Map(stats.servers.map((budget) => [budget.server, budget]))
    results.replaceChildren(table('Database servers', ['Name', 'Status', 'Reachable', 'Tenants', 'Budget in use', 'Sessions', 'Size', 'Version', 'Actions'],
      servers.items.map((server) => {
        const budget = budgets.get(server.name)
        const draining = server.status === 'draining'
        const button = h('button', { type: 'button', 'aria-label': `${draining ? 'Resume' : 'Drain'} ${server.name}` }, draining ? 'Resume' : 'Drain')
        button.disabled = server.status === 'disabled'
        button.addEventListener('click', () => {
          void act(button, status, async () => {
            const changed = await ok(api.POST(draining ? '/servers/{name}/resume' : '/servers/{name}/drain', { params: { path: { name: server.name } } }))
            await load()
            return `${changed.name} is ${changed.status}`
          })
        })
        return [
          server.name,
          h('span', { class: `badge ${server.status}` }, server.status),
          h('span', { class: `badge ${server.reachable ? 'active' : 'failed'}` }, server.reachable ? 'yes' : 'no'),
          server.maxTenants === null ? String(server.tenants) : `${server.tenants} / ${server.maxTenants}`,
          // This instance's share: what it has open against what it may open there.
          budget === undefined ? `0 / ${server.connectionBudget ?? 'instance budget'}` : `${budget.open} / ${budget.capacity}${budget.queued > 0 ? ` (${budget.queued} queued)` : ''}`,
          server.tenantBackends === null ? '—' : String(server.tenantBackends),
          bytes(server.tenantBytes),
          server.serverVersion ?? '—',
          button
        ]
      })))
  }
  view.replaceChildren(h('h1', {}, 'Servers'), h('p', {}, 'Budget in use: connections this instance has open on the server against its share of the budget. Sessions: connections open on its tenant databases from every instance.'), status.element, results)
  await load()
  return undefined
}
