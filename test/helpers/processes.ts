import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { eventually } from './wait.js'

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
