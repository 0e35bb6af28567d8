/**
 * The `move` row's writers, run as a process of their own (so they share no event loop with the
 * server or the move): `node --import tsx bench/move-writers.ts '<WriterOptions JSON>'`, with an
 * IPC channel. Each writer POSTs an article with a title of its own, one at a time, at most one
 * every `intervalMs` (a write held past its slot is not made up for with a burst), over a
 * keep-alive connection. Sends `started` once every writer's first write is answered, and on
 * `stop` lets the writes under way end and sends every write made.
 */
import { Agent, request } from 'node:http'

export interface WriterOptions {
  url: string
  host: string
  writers: number
  intervalMs: number
  /** Characters of each article's body. */
  bodyChars: number
}

export interface Write {
  title: string
  /** When it was sent, ms since the epoch (performance.timeOrigin + now: comparable across processes). */
  at: number
  latencyMs: number
  /** The HTTP status, 0 when no answer came. */
  status: number
  /** The error body's code, or the socket error's. */
  code?: string
}

export type WriterMessage = { type: 'started' } | { type: 'result', writes: Write[] }

const now = (): number => performance.timeOrigin + performance.now()

function post (agent: Agent, options: WriterOptions, payload: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve) => {
    const req = request(options.url + '/articles', {
      method: 'POST',
      agent,
      headers: { host: options.host, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
    }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
      res.on('error', (error: NodeJS.ErrnoException) => { resolve({ status: 0, body: JSON.stringify({ code: error.code ?? error.message }) }) })
    })
    req.on('error', (error: NodeJS.ErrnoException) => { resolve({ status: 0, body: JSON.stringify({ code: error.code ?? error.message }) }) })
    req.end(payload)
  })
}

function codeOf (body: string): string | undefined {
  try {
    const code = (JSON.parse(body) as { code?: unknown }).code
    return typeof code === 'string' ? code : undefined
  } catch {
    return undefined
  }
}

async function run (options: WriterOptions): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.writers })
  const writes: Write[] = []
  const body = 'w'.repeat(options.bodyChars)
  const state = { running: true }
  let firstAnswers = 0
  const writer = async (w: number): Promise<void> => {
    let next = now()
    for (let n = 0; state.running; n++) {
      const title = `writer ${w} ${n}`
      const at = now()
      const answer = await post(agent, options, JSON.stringify({ title, body }))
      const code = answer.status === 201 ? undefined : codeOf(answer.body)
      writes.push({ title, at, latencyMs: now() - at, status: answer.status, ...(code === undefined ? {} : { code }) })
      if (n === 0 && ++firstAnswers === options.writers) process.send?.({ type: 'started' } satisfies WriterMessage)
      next = Math.max(next + options.intervalMs, now())
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - now())))
    }
  }
  const stopped = new Promise<void>((resolve) => {
    process.on('message', (message) => { if (message === 'stop') resolve() })
  })
  const all = Promise.all(Array.from({ length: options.writers }, async (_, w) => { await writer(w) }))
  await stopped
  state.running = false
  await all
  agent.destroy()
  process.send?.({ type: 'result', writes } satisfies WriterMessage, () => { process.disconnect() })
}

if (process.send === undefined) throw new Error('bench/move-writers.ts runs as a child process with an IPC channel (see bench/move.ts)')
await run(JSON.parse(process.argv[2] ?? '{}') as WriterOptions)
