const SVG = 'http://www.w3.org/2000/svg'

export interface Series {
  name: string
  /** A CSS class of the line (its colour is in console.css). */
  kind: string
  points: Array<[number, number]>
}

function svg<K extends keyof SVGElementTagNameMap> (tag: K, attrs: Record<string, string | number>, ...children: Array<SVGElement | string>): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag)
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value))
  element.append(...children)
  return element
}

/**
 * A small line chart over time, drawn as inline SVG (no library, nothing but the console's own
 * script under its CSP): one polyline per series, the y axis from 0 to the largest value, the x
 * axis from the first sample to the last. `label` describes it to a screen reader.
 */
export function lineChart (label: string, series: Series[], width = 640, height = 180): SVGSVGElement {
  const pad = { left: 40, right: 8, top: 8, bottom: 20 }
  const all = series.flatMap((line) => line.points)
  const times = all.map(([t]) => t)
  const t0 = Math.min(...times)
  const t1 = Math.max(...times, t0 + 1)
  const top = Math.max(1, ...all.map(([, v]) => v))
  const x = (t: number): number => pad.left + (t - t0) / (t1 - t0) * (width - pad.left - pad.right)
  const y = (v: number): number => height - pad.bottom - v / top * (height - pad.top - pad.bottom)
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label, class: 'chart' },
    svg('title', {}, label),
    svg('line', { x1: pad.left, y1: y(0), x2: width - pad.right, y2: y(0), class: 'axis' }),
    svg('line', { x1: pad.left, y1: pad.top, x2: pad.left, y2: y(0), class: 'axis' }),
    svg('text', { x: pad.left - 4, y: pad.top + 10, 'text-anchor': 'end', class: 'tick' }, formatTick(top)),
    svg('text', { x: pad.left - 4, y: y(0), 'text-anchor': 'end', class: 'tick' }, '0'),
    svg('text', { x: width - pad.right, y: height - 4, 'text-anchor': 'end', class: 'tick' }, 'now'),
    svg('text', { x: pad.left, y: height - 4, class: 'tick' }, `${Math.round((t1 - t0) / 1000)} s ago`))
  for (const line of series) {
    if (line.points.length === 0) continue
    chart.append(svg('polyline', { points: line.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' '), class: `line ${line.kind}` }, svg('title', {}, line.name)))
  }
  return chart
}

const formatTick = (value: number): string => value >= 10 ? String(Math.round(value)) : value.toFixed(1)
