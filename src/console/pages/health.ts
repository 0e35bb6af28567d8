import { api, ok } from '../api.js'
import type { paths } from '../api-types.js'
import { lineChart, type Series } from '../chart.js'
import { every, h, table, type Page } from '../dom.js'

type Stats = paths['/stats']['get']['responses']['200']['content']['application/json']
type Outcome = keyof Stats['requests']

const SAMPLE_MS = 2000
/** Five minutes of samples. */
const KEEP = 150
/** Kept while the console stays open in this tab, so coming back to the page shows the minutes before. */
const samples: Array<{ at: number, stats: Stats }> = []

const percent = (ratio: number | null): string => ratio === null ? '—' : `${(ratio * 100).toFixed(1)} %`

/** Requests a second between consecutive samples, for the outcomes given. */
function rate (outcomes: Outcome[]): Array<[number, number]> {
  return samples.slice(1).map((sample, index) => {
    const before = samples[index] as { at: number, stats: Stats }
    const count = outcomes.reduce((sum, outcome) => sum + sample.stats.requests[outcome] - before.stats.requests[outcome], 0)
    return [sample.at, Math.max(0, count) / ((sample.at - before.at) / 1000)]
  })
}

/**
 * This instance's health from GET /stats, sampled every 2 s: the catalog feed, the connection
 * budget, the host cache and requests by outcome, with a chart of the last minutes.
 */
export const healthPage: Page = async (view) => {
  const figures = h('div', { id: 'health-figures' })
  const chart = h('figure', { class: 'chart-box' })
  view.replaceChildren(h('h1', {}, 'Health'), h('p', {}, 'This instance, sampled every 2 seconds while this page is open.'), figures, chart)
  return every(SAMPLE_MS, figures, async () => {
    const stats = await ok(api.GET('/stats'))
    samples.push({ at: Date.parse(stats.at), stats })
    samples.splice(0, samples.length - KEEP)
    const { budget, hostCache, requests } = stats
    figures.replaceChildren(
      h('dl', { class: 'figures' },
        h('dt', {}, 'Catalog feed'), h('dd', { 'data-figure': 'feed' }, h('span', { class: `badge ${stats.catalogFeedConnected ? 'active' : 'failed'}` }, stats.catalogFeedConnected ? 'connected' : 'not connected')),
        h('dt', {}, 'Connection budget in use'), h('dd', { 'data-figure': 'budget' }, `${budget.open} / ${budget.capacity}${budget.queued > 0 ? `, ${budget.queued} queued` : ''}`),
        h('dt', {}, 'Host cache hit ratio'), h('dd', { 'data-figure': 'hit-ratio' }, percent(hostCache.hitRatio)),
        h('dt', {}, 'Tenant pools'), h('dd', {}, `${stats.pools.cached} cached, ${stats.pools.retiring} retiring`),
        h('dt', {}, 'Busy refusals'), h('dd', {}, budget.rejected),
        h('dt', {}, 'Requests waiting their turn'), h('dd', { 'data-figure': 'turns' }, `${stats.turns.waiting} now; since start ${stats.turns.left} left before their turn, ${stats.turns.timedOut} timed out`)),
      table('Tenant requests by outcome, since start', ['Outcome', 'Requests'], (Object.entries(requests) as Array<[Outcome, number]>).map(([outcome, count]) => [outcome.replaceAll('_', ' '), count])))
    const refused = (Object.keys(requests) as Outcome[]).filter((outcome) => outcome !== 'served')
    const series: Series[] = [
      { name: 'served requests a second', kind: 'served', points: rate(['served']) },
      { name: 'refused requests a second', kind: 'refused', points: rate(refused) },
      { name: 'connections open', kind: 'budget', points: samples.map(({ at, stats }) => [at, stats.budget.open]) }
    ]
    chart.replaceChildren(
      lineChart('Requests a second (served, refused) and connections open, over the last minutes', series),
      h('figcaption', {}, h('ul', { class: 'legend' }, ...series.map((line) => h('li', { class: line.kind }, line.name)))))
  })
}
