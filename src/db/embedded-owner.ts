import { readFileSync } from 'node:fs'
import { readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Who owns the embedded PostgreSQL of a data directory: the process that stops it on its own
 * shutdown. Recorded in `<dataDir>/postgres.owner` as the owner's pid and its start time, so a
 * pid reused by an unrelated process after the owner died does not pass for the owner.
 * Without /proc (macOS) the pid alone decides.
 */
interface Owner {
  pid: number
  /** Start time of the process (/proc/<pid>/stat field 22, clock ticks since boot); null without /proc. */
  started: string | null
}

function procStat (pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which may itself hold spaces and parentheses: state is first.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return null
  }
}

/** Start time of a process, or null where /proc cannot tell. */
function processStart (pid: number): string | null {
  return procStat(pid)?.[19] ?? null
}

/** Whether a process runs (a zombie, dead but not yet reaped, does not). */
export function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  return procStat(pid)?.[0] !== 'Z'
}

function ownerAlive (owner: Owner): boolean {
  if (!processAlive(owner.pid)) return false
  if (owner.started === null) return true
  const started = processStart(owner.pid)
  return started === null || started === owner.started
}

function parseOwner (text: string): Owner | null {
  try {
    const value = JSON.parse(text) as Partial<Owner>
    if (!Number.isInteger(value.pid) || (value.pid ?? 0) <= 0) return null
    return { pid: value.pid as number, started: typeof value.started === 'string' ? value.started : null }
  } catch {
    return null
  }
}

export const ownerFile = (dataDir: string): string => join(dataDir, 'postgres.owner')

/**
 * Makes this process the owner unless a live process other than this one is: true when it now
 * owns. A record left by a dead owner (a `kill -9`, a crash) is taken over. Two processes that
 * find the same dead owner at the same instant can both take over (the file has no
 * compare-and-swap); both then stop the server on shutdown, which the later one survives as a
 * lost database connection, no worse than before ownership was recorded.
 */
export async function claimOwnership (dataDir: string): Promise<boolean> {
  const path = ownerFile(dataDir)
  const mine = JSON.stringify({ pid: process.pid, started: processStart(process.pid) } satisfies Owner)
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await writeFile(path, mine, { flag: 'wx' })
      return true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const owner = parseOwner(await readFile(path, 'utf8').catch(() => ''))
    if (owner !== null && (owner.pid === process.pid || ownerAlive(owner))) return false
    await unlink(path).catch(() => {})
  }
  return false
}

/** Gives ownership up, if this process still holds it. */
export async function releaseOwnership (dataDir: string): Promise<void> {
  const path = ownerFile(dataDir)
  const owner = parseOwner(await readFile(path, 'utf8').catch(() => ''))
  if (owner?.pid === process.pid) await unlink(path).catch(() => {})
}

/** Whether some live process (this one included) owns the directory's server. */
export async function ownedByLiveProcess (dataDir: string): Promise<boolean> {
  const owner = parseOwner(await readFile(ownerFile(dataDir), 'utf8').catch(() => ''))
  return owner !== null && (owner.pid === process.pid || ownerAlive(owner))
}

export interface Postmaster {
  pid: number
  port: number
}

/**
 * The server running on a PostgreSQL data directory, from its postmaster.pid (pid on line 1,
 * port on line 4), if that process lives and (where /proc tells) is a postgres of this directory.
 */
export async function runningPostmaster (pgDir: string): Promise<Postmaster | null> {
  const lines = await readFile(join(pgDir, 'postmaster.pid'), 'utf8').then((text) => text.split('\n'), () => null)
  if (lines === null) return null
  const pid = Number(lines[0])
  const port = Number(lines[3])
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return null
  if (!processAlive(pid)) return null
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null)
  // A pid reused since the server died (after a reboot, say) belongs to some other program.
  if (cmdline !== null && !cmdline.split('\0').includes(pgDir)) return null
  return { pid, port }
}

/**
 * Stops a server this process did not spawn (one adopted from a dead owner): SIGINT is
 * PostgreSQL's fast shutdown (sessions terminated, a clean checkpoint). Waits until it is gone.
 */
export async function stopPostmaster (pid: number, timeoutMs = 30000): Promise<void> {
  try {
    process.kill(pid, 'SIGINT')
  } catch {
    return
  }
  const deadline = Date.now() + timeoutMs
  while (processAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`the embedded PostgreSQL (pid ${pid}) did not stop within ${timeoutMs} ms`)
    await sleep(50)
  }
}
