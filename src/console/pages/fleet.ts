import { ApiError, api, ok } from '../api.js'
import type { paths } from '../api-types.js'
import { act, every, h, statusLine, table, when, type Page } from '../dom.js'

type Run = paths['/migrations/{id}']['get']['responses']['200']['content']['application/json']

/**
 * Fleet migrations: start one (POST /migrations answers its id at once), then follow it every
 * second until it ends: progress, tenant results as they finish (failures first, as the API
 * orders them), and its summary. `#/fleet/<id>` follows a run, the CLI's included.
 */
export const fleetPage: Page = async (view, [id]) => {
  const status = statusLine()
  const start = h('button', { type: 'button' }, 'Migrate every tenant')
  start.addEventListener('click', () => {
    void act(start, status, async () => {
      try {
        const run = await ok(api.POST('/migrations'))
        location.hash = `#/fleet/${run.id}`
      } catch (error) {
        // One runs at a time: follow the one that runs.
        if (!(error instanceof ApiError && error.code === 'MIGRATION_RUNNING')) throw error
        const running = (await ok(api.GET('/migrations', { params: { query: { limit: 1 } } }))).items.find((run) => run.status === 'running')
        if (running === undefined) throw error
        location.hash = `#/fleet/${running.id}`
      }
      return undefined
    })
  })
  const progress = h('section', { 'aria-labelledby': 'run-title', class: 'run' })
  const recent = await ok(api.GET('/migrations', { params: { query: { limit: 10 } } }))
  view.replaceChildren(
    h('h1', {}, 'Fleet'),
    h('p', {}, 'Migrates every tenant to the newest schema, a few at a time on each server. One runs at a time in the deployment.'),
    h('p', {}, start), status.element, progress,
    h('section', { 'aria-labelledby': 'recent-title' }, h('h2', { id: 'recent-title' }, 'Recent runs'),
      recent.items.length === 0
        ? h('p', {}, 'None yet.')
        : table('Fleet migrations, newest first', ['Started', 'Origin', 'Status', 'Done', 'Failed', ''],
          recent.items.map((run) => [when(run.startedAt), run.origin, h('span', { class: `badge ${run.status}` }, run.status), `${run.progress.done} / ${run.progress.total}`, run.progress.failed, h('a', { href: `#/fleet/${run.id}` }, 'Follow')]))))
  if (id === undefined) return undefined
  let ended = false
  const stop = every(1000, progress, async () => {
    if (ended) return
    try {
      const run = await ok(api.GET('/migrations/{id}', { params: { path: { id }, query: { limit: 1000 } } }))
      progress.replaceChildren(...drawRun(run))
      ended = run.status !== 'running'
    } catch (error) {
      status.fail(error)
      ended = true
    }
  })
  return stop
}

function drawRun (run: Run): Node[] {
  const { total, done, failed } = run.progress
  const bar = h('progress', { id: 'run-progress', max: Math.max(total, 1), value: done })
  const nodes: Node[] = [
    h('h2', { id: 'run-title' }, `Run ${run.id.slice(0, 8)} `, h('span', { class: `badge ${run.status}`, 'data-run-status': run.status }, run.status)),
    h('div', { class: 'field' }, h('label', { for: 'run-progress' }, `${done} of ${total} tenants, ${failed} failed`), bar)
  ]
  if (run.summary !== null) {
    const { tenants, migrated, upToDate, skipped, failed: failures, durationMs } = run.summary
    nodes.push(h('p', { class: 'summary' }, `Summary: ${tenants} tenants: ${migrated} migrated, ${upToDate} up to date, ${skipped} skipped, ${failures} failed${durationMs === null ? '' : `, in ${(durationMs / 1000).toFixed(1)} s`}.`))
  }
  if (run.error !== null) nodes.push(h('p', { role: 'alert', class: 'error' }, run.error))
  if (run.results.length > 0) {
    nodes.push(table('Tenant results, failures first', ['Tenant', 'Status', 'Before', 'After', 'Duration', 'Error'],
      run.results.map((result) => [h('a', { href: `#/tenants/${result.slug}` }, result.slug), h('span', { class: `badge ${result.status}` }, result.status), result.before ?? '—', result.after ?? '—', `${result.durationMs} ms`, result.error ?? ''])))
  }
  return nodes
}
