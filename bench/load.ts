import { spawn } from 'node:child_process'
import { benchScript, nodeArgs } from './bench-files.js'
import type { HostSpec } from './hosts.js'

export interface LoadOptions {
  /** Base URL of a listening server. */
  url: string
  /** Path of every request. */
  path: string
  /** How each request's Host header is chosen. */
  host: HostSpec
  connections: number
  durationS: number
}

export interface LoadResult {
  /** Successful (2xx) responses per second. */
  okPerS: number
  /** All responses per second. */
  rps: number
  p50Ms: number
  p99Ms: number
  requests: number
  non2xx: number
  errors: number
}

const loader = benchScript('loader')

/**
 * Drives a listening server with autocannon from a separate process (bench/loader.ts), so the
 * load generator and the server under test never compete for one event loop.
 */
export async function load (options: LoadOptions): Promise<LoadResult> {
  const child = spawn(process.execPath, nodeArgs(loader, JSON.stringify(options)), { stdio: ['ignore', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => { child.on('close', resolve) })
  if (code !== 0) throw new Error(`load generator exited with ${String(code)}`)
  return JSON.parse(stdout) as LoadResult
}

export const median = (values: number[]): number => percentile(values, 50)

/** A load's figures in a few words, for a row's detail. */
export const brief = (r: LoadResult): string => `${Math.round(r.okPerS)} ok/s, p99 ${r.p99Ms} ms, ${r.non2xx} non-2xx, ${r.errors} errors`

export function percentile (values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index] ?? NaN
}
