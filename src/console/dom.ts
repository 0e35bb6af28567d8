import { describe } from './api.js'

type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>

/**
 * An element with attributes (`onclick` and the like as listeners) and children. Never a style
 * attribute: the page's Content-Security-Policy refuses inline style, the CSS file says it all.
 */
export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (typeof value === 'function') element.addEventListener(name.slice(2), value)
    else element.setAttribute(name, value === true ? '' : String(value))
  }
  element.append(...children.filter((child) => child !== null && child !== undefined && child !== false).map((child) => typeof child === 'number' ? String(child) : child as Node | string))
  return element
}

let fields = 0
/** A control with its label (every control has one). */
export function field (label: string, control: HTMLInputElement | HTMLSelectElement, hint?: string): HTMLElement {
  if (control.id === '') control.id = `field-${++fields}`
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hint === undefined ? null : h('small', {}, hint))
}

/** A live region for the outcome of actions: errors as `CODE: message`, in an alert. */
export function statusLine (): { element: HTMLElement, say: (text: string) => void, fail: (error: unknown) => void, clear: () => void } {
  const element = h('div', { class: 'status', 'aria-live': 'polite' })
  return {
    element,
    say: (text) => { element.replaceChildren(h('p', { role: 'status' }, text)) },
    fail: (error) => { element.replaceChildren(h('p', { role: 'alert', class: 'error' }, describe(error))) },
    clear: () => { element.replaceChildren() }
  }
}

/** Runs an action from a button: disabled while it runs; its error goes to `status`. */
export async function act (button: HTMLButtonElement, status: ReturnType<typeof statusLine>, work: () => Promise<string | undefined>): Promise<void> {
  button.disabled = true
  status.clear()
  try {
    const done = await work()
    if (done !== undefined) status.say(done)
  } catch (error) {
    status.fail(error)
  } finally {
    button.disabled = false
  }
}

/** A table with a caption and header row; `rows` of cells. It scrolls sideways in its box on a narrow window, the page does not. */
export function table (caption: string, headers: string[], rows: Child[][]): HTMLElement {
  return h('div', { class: 'table-box' }, h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...headers.map((text) => h('th', { scope: 'col' }, text)))),
    h('tbody', {}, ...rows.map((cells) => h('tr', {}, ...cells.map((cell) => h('td', {}, cell)))))))
}

/** A date as `YYYY-MM-DD HH:MM` UTC, in a <time>. */
export function when (iso: string | null): Node | string {
  if (iso === null) return '—'
  return h('time', { datetime: iso }, `${iso.slice(0, 10)} ${iso.slice(11, 16)}`)
}

/**
 * Calls `work` now and every `ms` after it settles until stopped; it stops by itself once
 * `owner` has left the page. Returns the stop.
 */
export function every (ms: number, owner: HTMLElement, work: () => Promise<void>): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  const tick = async (): Promise<void> => {
    if (stopped || !owner.isConnected) return
    await work().catch(() => {})
    if (!stopped) timer = setTimeout(() => { void tick() }, ms)
  }
  // The first call once the page has drawn `owner` (pages start their timers before they draw).
  timer = setTimeout(() => { void tick() }, 0)
  return () => { stopped = true; clearTimeout(timer) }
}

/** A page of the console: draws itself into `view`; returns what stops its timers. */
export type Page = (view: HTMLElement, params: string[]) => Promise<(() => void) | undefined>
