import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { childEnv, root, SERVER_ENTRY } from './compiled.js'
import { eventually } from './wait.js'
import type { Teardown } from './silo.js'

/** Whether a process runs: a zombie (dead, not yet reaped by its new parent) does not. */
export function processRuns (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    // No /proc (or the process just went): signal 0 said it was there.
    return true
  }
}

/** The postmaster pid of a PostgreSQL data directory (postmaster.pid, line 1), or null. */
export async function postmasterPid (pgDir: string): Promise<number | null> {
  const pid = Number((await readFile(join(pgDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0])
  return Number.isInteger(pid) && pid > 0 ? pid : null
}

/**
 * Stops a postmaster however it was left (fast shutdown, then SIGKILL if it lingers): for
 * teardowns, so a failing test never leaves a PostgreSQL behind.
 */
export async function killPostmaster (pid: number): Promise<void> {
  if (!processRuns(pid)) return
  try {
    process.kill(pid, 'SIGINT')
  } catch {
    return
  }
  if (await eventually(() => !processRuns(pid), 15000)) return
  try {
    process.kill(pid, 'SIGKILL')
  } catch {}
  await eventually(() => !processRuns(pid), 5000)
}

export interface ServerProcess {
  child: ChildProcessByStdio<null, Readable, Readable>
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  output: () => string
  /** Resolves with the HTTP port once the server logs that it listens. */
  listening: (timeoutMs: number) => Promise<number>
}

/** Spawns the compiled server with `env` over the test's environment; SIGKILLed in teardown if still alive. */
export function spawnServer (t: Teardown, env: Record<string, string | number | undefined>): ServerProcess {
  const child = spawn(process.execPath, [SERVER_ENTRY], { cwd: root, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => { resolve({ code, signal }) })
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const listening = async (timeoutMs: number): Promise<number> => {
    const find = (): RegExpMatchArray | null => /Server listening at http:\/\/[^:]+:(\d+)/.exec(output)
    const up = await eventually(() => find() !== null || child.exitCode !== null || child.signalCode !== null, timeoutMs)
    const match = find()
    if (!up || match === null) throw new Error(`the server did not listen within ${timeoutMs} ms: ${output.slice(-2000)}`)
    return Number(match[1])
  }
  return { child, exited, output: () => output, listening }
}
