import { spawn } from 'node:child_process'

/**
 * A bench helper run as a process of its own (`node --import tsx <script> '<options JSON>'`) with
 * an IPC channel: it sends `{ type: 'started' }` once running, and when told `'stop'` sends its
 * result (`{ type: 'result', ... }`) and exits. `stop` resolves with that result.
 */
export function startWorker<R extends { type: 'result' }> (script: string, options: unknown, name: string): { started: Promise<void>, stop: () => Promise<R> } {
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = new Promise<number | null>((resolve) => { child.on('exit', resolve) })
  let result: R | undefined
  const started = new Promise<void>((resolve, reject) => {
    child.on('message', (message: { type: 'started' } | R) => {
      if (message.type === 'started') resolve()
      else result = message
    })
    void exited.then((code) => { reject(new Error(`the ${name} exited with ${String(code)} before starting`)) })
  })
  return {
    started,
    stop: async () => {
      if (child.connected) child.send('stop')
      const code = await exited
      if (result === undefined) throw new Error(`the ${name} exited with ${String(code)} without their result`)
      return result
    }
  }
}
