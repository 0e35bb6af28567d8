/**
 * The `leavers` row's clients that give up, run as a process of their own: `node --import tsx
 * bench/leaver-clients.ts '<LeaverOptions JSON>'`, with an IPC channel. Each client opens a
 * connection, sends its whole request, and closes the connection a random 0 to `patienceMs`
 * later, answered or not, then starts again (as clients that time out and retry do). Sends
 * `started` once running; told `stop`, ends and sends how many requests were sent (worker-process.ts).
 */
import net from 'node:net'

export interface LeaverOptions {
  port: number
  /** Hosts picked at random, one a request. */
  hosts: string[]
  path: string
  clients: number
  /** The longest a client waits before it closes its connection. */
  patienceMs: number
}

export type LeaverMessage = { type: 'started' } | { type: 'result', sent: number }

async function leaveOnce (options: LeaverOptions): Promise<void> {
  const host = options.hosts[Math.floor(Math.random() * options.hosts.length)] ?? ''
  await new Promise<void>((resolve) => {
    const socket = net.connect(options.port, '127.0.0.1', () => {
      socket.write(`GET ${options.path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`)
      setTimeout(() => { socket.destroy() }, Math.random() * options.patienceMs)
    })
    socket.on('error', () => {})
    socket.on('close', () => { resolve() })
  })
}

const options = JSON.parse(process.argv[2] ?? '{}') as LeaverOptions
const state = { running: true }
let sent = 0
const loops = Array.from({ length: options.clients }, async () => {
  while (state.running) {
    await leaveOnce(options)
    sent++
  }
})
process.on('message', (message) => {
  if (message !== 'stop') return
  state.running = false
  void Promise.all(loops).then(() => {
    process.send?.({ type: 'result', sent } satisfies LeaverMessage, () => { process.exit(0) })
  })
})
process.send?.({ type: 'started' } satisfies LeaverMessage)
