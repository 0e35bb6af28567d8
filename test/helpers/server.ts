import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { request } from 'node:http'
import type { Readable } from 'node:stream'
import type { Teardown } from './silo.js'
import { assertBuilt, childEnv, SERVER_ENTRY, root } from './compiled.js'

assertBuilt()

export interface ServerExit { code: number | null, signal: NodeJS.Signals | null }

/** A line of the server's JSON log (pino). */
export interface LogLine { msg?: string, level?: number, [key: string]: unknown }

export interface SpawnOptions {
  /** Node's own arguments, before the entry point: `['--import', probeUrl]`. */
  nodeArgs?: string[]
  /** What `env` goes over: the test's own environment unless given; `{}` gives the server `env` alone. */
  baseEnv?: NodeJS.ProcessEnv
  /** The project root unless given. */
  cwd?: string
}

export interface SpawnedServer {
  child: ChildProcessByStdio<null, Readable, Readable>
  stdout: () => string
  stderr: () => string
  /** stdout and stderr as they interleaved. */
  output: () => string
  /** The JSON lines of stdout so far, parsed as they arrive. */
  lines: readonly LogLine[]
  /** Settles once the process has exited and all its output is read. */
  exited: Promise<ServerExit>
  /**
   * Resolves with the first stdout line `pattern` matches (lines already printed count);
   * rejects, with the output's tail, if the process exits or `timeoutMs` passes first.
   */
  waitForLine: (pattern: RegExp, timeoutMs: number) => Promise<string>
  /** As waitForLine, for the first JSON log line `match` accepts. */
  waitForLog: (match: (line: LogLine) => boolean, timeoutMs: number) => Promise<LogLine>
  /** The port, once the server logs that it listens (LOG_LEVEL info or lower); rejects as waitForLine does. */
  listening: (timeoutMs: number) => Promise<number>
  /** Sends `signal`, unless the process has exited. */
  kill: (signal: NodeJS.Signals) => void
  /** SIGTERM (unless the process has exited), then its exit. */
  stop: () => Promise<ServerExit>
}

const LISTENING = 'Server listening at '

/**
 * Spawns the compiled server (as `npm start` and the image run it) with `env` over the test's
 * environment (see childEnv; PORT 0 unless `env` names one); SIGKILLed in teardown if still running.
 */
export function spawnServer (t: Teardown, env: Record<string, string | number | undefined>, options: SpawnOptions = {}): SpawnedServer {
  const child = spawn(process.execPath, [...options.nodeArgs ?? [], SERVER_ENTRY], {
    cwd: options.cwd ?? root,
    env: childEnv({ PORT: 0, ...env }, options.baseEnv),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  let output = ''
  let pending = ''
  const textLines: string[] = []
  const lines: LogLine[] = []
  const waiters = new Set<() => void>()
  const wake = (): void => { for (const waiter of waiters) waiter() }
  const addLine = (text: string): void => {
    textLines.push(text)
    if (!text.startsWith('{')) return
    try {
      lines.push(JSON.parse(text) as LogLine)
    } catch {}
  }
  // Decoded by the streams, so a character split between two chunks stays whole.
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stdout.on('data', (text: string) => {
    stdout += text
    output += text
    // Only whole lines: a chunk can end inside one, and half a line neither parses nor shows the whole port.
    const complete = (pending + text).split('\n')
    pending = complete.pop() ?? ''
    for (const line of complete) addLine(line)
    wake()
  })
  child.stderr.on('data', (text: string) => { stderr += text; output += text })

  // 'close', not 'exit': by then every byte the process wrote has been read.
  let closed: ServerExit | null = null
  const exited = new Promise<ServerExit>((resolve) => {
    child.on('close', (code, signal) => {
      if (pending !== '') addLine(pending)
      pending = ''
      closed = { code, signal }
      resolve(closed)
    })
  })
  // After `exited` settles, so a race between the exit and a wait sees the exit first.
  void exited.then(wake)
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })

  const tail = (): string => output.slice(-4000)
  // Checked on every chunk of stdout and at the exit, which settles every wait: no timer outlives the process.
  const waitFor = async <T>(find: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    await new Promise<T>((resolve, reject) => {
      const settle = (): void => { waiters.delete(check); clearTimeout(timer) }
      const check = (): void => {
        const found = find()
        if (found !== undefined) {
          settle()
          resolve(found)
        } else if (closed !== null) {
          settle()
          reject(new Error(`the server exited (code ${String(closed.code)}, signal ${String(closed.signal)}) while waiting for ${what}: ${tail()}`))
        }
      }
      const timer = setTimeout(() => { settle(); reject(new Error(`waited ${timeoutMs} ms for ${what} in vain: ${tail()}`)) }, timeoutMs)
      waiters.add(check)
      check()
    })

  const waitForLine = async (pattern: RegExp, timeoutMs: number): Promise<string> =>
    await waitFor(() => textLines.find((line) => pattern.test(line)), `a stdout line matching ${String(pattern)}`, timeoutMs)
  const waitForLog = async (match: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine> =>
    await waitFor(() => lines.find(match), 'a matching log line', timeoutMs)
  const kill = (signal: NodeJS.Signals): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
  }
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => output,
    lines,
    exited,
    waitForLine,
    waitForLog,
    listening: async (timeoutMs) => {
      const line = await waitFor(() => lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith(LISTENING)), 'the line saying it listens', timeoutMs)
      return Number(new URL(String(line.msg).slice(LISTENING.length)).port)
    },
    kill,
    stop: async () => {
      kill('SIGTERM')
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
