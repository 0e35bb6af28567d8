import { spawn } from 'node:child_process'
import { nodeArgs } from './bench-files.js'

/** What a worker says once it runs: `started`, with whatever it has to tell (its URL, say). */
export interface Started { type: 'started' }

/**
 * A bench helper run as a process of its own (`node <script> '<options JSON>'`, `script` a `benchScript`) with
 * an IPC channel: it sends `{ type: 'started', ... }` once running (what `started` resolves
 * with), and when told `'stop'` sends its result (`{ type: 'result', ... }`) and exits. `stop`
 * resolves with that result; `ask` sends a message and waits for a given answer. `wrap` runs it under another program (`['valgrind', ...]`: the
 * channel passes through, and `pid` is the worker's own); `nodeFlags` go to node (`--expose-gc`).
 */
export function startWorker<R extends { type: 'result' }, S extends Started = Started> (script: string, options: unknown, name: string, wrap: readonly string[] = [], nodeFlags: readonly string[] = []): { started: Promise<S>, stop: () => Promise<R>, ask: (message: unknown, answer: string) => Promise<unknown>, pid: number | undefined } {
  const command = [...wrap, process.execPath, ...nodeFlags, ...nodeArgs(script, JSON.stringify(options))]
  const child = spawn(command[0] as string, command.slice(1), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = new Promise<number | null>((resolve) => { child.on('exit', resolve) })
  let result: R | undefined
  const started = new Promise<S>((resolve, reject) => {
    child.on('message', (message: S | R) => {
      if (message.type === 'started') resolve(message as S)
      else result = message as R
    })
    void exited.then((code) => { reject(new Error(`the ${name} exited with ${String(code)} before starting`)) })
  })
  return {
    pid: child.pid,
    started,
    // Sends `message` and resolves with the next message of type `answer`.
    ask: async (message, answer) => await new Promise((resolve) => {
      const listener = (reply: { type?: string }): void => {
        if (reply.type !== answer) return
        child.off('message', listener)
        resolve(reply)
      }
      child.on('message', listener)
      child.send(message as object)
    }),
    stop: async () => {
      if (child.connected) child.send('stop')
      const code = await exited
      if (result === undefined) throw new Error(`the ${name} exited with ${String(code)} without their result`)
      return result
    }
  }
}
