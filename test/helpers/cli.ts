import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process'
import type { Readable } from 'node:stream'
import { assertBuilt, childEnv, CLI_ENTRY, root } from './compiled.js'

assertBuilt()

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Starts the tenants CLI as its own process (the compiled build, the package's bin), with `env` added. */
export function spawnCli (args: string[], env: Record<string, string | number | undefined>): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, [CLI_ENTRY, ...args], {
    cwd: root,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe']
  })
}

/** Runs the tenants CLI to completion and collects its output; `input`, when given, is its standard input. */
export async function runCli (args: string[], env: Record<string, string | number | undefined>, input?: string): Promise<CliResult> {
  if (input === undefined) return await collect(spawnCli(args, env))
  const child = spawn(process.execPath, [CLI_ENTRY, ...args], { cwd: root, env: childEnv(env), stdio: ['pipe', 'pipe', 'pipe'] })
  child.stdin.end(input)
  return await collect(child)
}

/** Runs any command to completion (in `cwd`, with `env`: the test's own less tap's hook by default) and collects its output. */
export async function runProcess (command: string, args: string[], options: { cwd: string, env?: NodeJS.ProcessEnv }): Promise<CliResult> {
  return await collect(spawn(command, args, { cwd: options.cwd, env: options.env ?? childEnv({}), stdio: ['ignore', 'pipe', 'pipe'] }))
}

async function collect (child: ChildProcess & { stdout: Readable, stderr: Readable }): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => { child.on('close', resolve) })
  return { code, stdout, stderr }
}
