import { spawn } from 'node:child_process'
import { request } from 'node:http'
import type { Teardown } from './silo.js'
import { assertBuilt, childEnv, SERVER_ENTRY, root } from './compiled.js'

assertBuilt()

export interface SpawnedServer {
  stdout: () => string
  stderr: () => string
  /** The exit code once the process has exited. */
  exited: Promise<number | null>
  /**
   * Resolves with the first stdout line matching `pattern` (lines already printed count), or
   * null when the process exits first or `timeoutMs` passes without one.
   */
  waitForLine: (pattern: RegExp, timeoutMs: number) => Promise<string | null>
  /** The port, once the server logged that it listens (LOG_LEVEL info or lower); null if it never did. */
  port: (timeoutMs: number) => Promise<number | null>
  stop: () => Promise<number | null>
}

/** Spawns the compiled server (as `npm start` runs it) with `env` added; killed in teardown if still running. */
export function spawnServer (t: Teardown, env: Record<string, string>): SpawnedServer {
  const child = spawn(process.execPath, [SERVER_ENTRY], {
    cwd: root,
    env: childEnv({ PORT: '0', ...env }),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<number | null>((resolve) => { child.on('close', resolve) })
  let stdout = ''
  let stderr = ''
  const waiters = new Set<() => void>()
  const wake = (): void => { for (const waiter of waiters) waiter() }
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); wake() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  // `done` is set before the waiters wake, so a waiter woken by the exit sees it and stops.
  let done = false
  void exited.then(() => { done = true; wake() })
  t.teardown(async () => {
    if (!done) child.kill('SIGKILL')
    await exited
  })

  const waitForLine = async (pattern: RegExp, timeoutMs: number): Promise<string | null> =>
    await new Promise((resolve) => {
      const check = (): void => {
        const line = stdout.split('\n').find((candidate) => pattern.test(candidate))
        if (line === undefined && !done) return
        waiters.delete(check)
        clearTimeout(timer)
        resolve(line ?? null)
      }
      const timer = setTimeout(() => { waiters.delete(check); resolve(null) }, timeoutMs)
      waiters.add(check)
      check()
    })
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitForLine,
    port: async (timeoutMs) => {
      const line = await waitForLine(/Server listening at http:\/\/127\.0\.0\.1:\d+/, timeoutMs)
      const match = line === null ? null : /127\.0\.0\.1:(\d+)/.exec(line)
      return match === null ? null : Number(match[1])
    },
    stop: async () => {
      if (!done) child.kill('SIGTERM')
      return await exited
    }
  }
}

/** A GET over a real socket, with this Host header. */
export async function httpGet (port: number, host: string, path: string): Promise<{ status: number, headers: Record<string, unknown>, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
    })
    req.on('error', reject)
    req.end()
  })
}
