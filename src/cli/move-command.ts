import type { Command } from 'commander'
import type { MoveRecord } from '../catalog/tenant-moves.js'
import { assertSlug } from '../lifecycle/tenant-names.js'
import { withSilo } from './open-silo.js'
import type { Action } from './usage.js'

/** `move`: a tenant's database to another server, with a short write freeze; each phase is printed as it begins. */
export function moveCommand (program: Command, action: Action): void {
  program.command('move <slug>')
    .description('move the tenant\'s database to another server while it serves: copied, caught up, then switched during a write freeze of at most MOVE_HOLD_MS (its requests wait meanwhile); the source is dropped after the switch')
    .requiredOption('--to <server>', 'the registered server to move it to (active, not full, answering)')
    .option('--keep-source', 'keep the source database after the switch, closed to connections (doctor lists it; `doctor --fix --yes` drops it)')
    .action(action(async (slug: string, options: { to: string, keepSource?: boolean }) => {
      assertSlug(slug)
      let phase = ''
      const move = await withSilo(async (silo) => await silo.mover.move(slug, {
        to: options.to,
        keepSource: options.keepSource === true,
        onProgress: (progress: MoveRecord) => {
          if (progress.phase === phase) return
          phase = progress.phase
          console.log(describe(progress))
        }
      }))
      const seconds = ((move.finishedAt ?? new Date()).getTime() - move.startedAt.getTime()) / 1000
      console.log(`moved ${move.slug} from ${move.from} to ${move.to}: ${move.rowsCopied} rows copied, ${move.changesApplied} changes caught up, writes held ${move.freezeMs ?? 0} ms${move.keepSource ? ', source kept (closed to connections)' : ''}${move.error === null ? '' : ` (${move.error})`} [${seconds.toFixed(1)} s]`)
      return true
    }))
}

function describe (move: MoveRecord): string {
  switch (move.phase) {
    case 'copying': return `copying ${move.slug} from ${move.from} to ${move.to}...`
    case 'catching-up': return `copied ${move.rowsCopied} rows; catching up with the writes made meanwhile...`
    case 'switched': return `switched to ${move.to} (writes held ${move.freezeMs ?? 0} ms)`
    default: return `${move.phase}...`
  }
}
