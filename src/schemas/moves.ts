import { Type, type Static } from '@sinclair/typebox'
import { MOVE_PHASES, type MoveRecord } from '../catalog/tenant-moves.js'
import { ServerParams } from './servers.js'

export const MoveStart = Type.Object({
  to: Type.String({ pattern: ServerParams.properties.name.pattern, description: 'name of the server to move the tenant to (active, not full, answering)' }),
  keepSource: Type.Optional(Type.Boolean({ description: 'keep the source database after the switch, closed to connections (doctor lists it; `doctor --fix --yes` drops it)' }))
}, { additionalProperties: false, title: 'MoveStart' })
export type MoveStart = Static<typeof MoveStart>

/** The one public shape of a move, for the admin API and the CLI alike. */
export const MoveView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  slug: Type.String(),
  from: Type.String({ description: 'the server it was on' }),
  to: Type.String({ description: 'the server it goes to' }),
  phase: Type.Union(MOVE_PHASES.map((phase) => Type.Literal(phase)), { description: 'preparing → copying → catching-up → frozen → switched → done; or failed (the tenant is served from its source as before)' }),
  keepSource: Type.Boolean(),
  rowsCopied: Type.Integer(),
  changesApplied: Type.Integer({ description: 'rows written during the copy and carried over after it' }),
  freezeMs: Type.Union([Type.Integer(), Type.Null()], { description: 'how long its writes were held (the last freeze)' }),
  error: Type.Union([Type.String(), Type.Null()]),
  startedAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()])
}, { title: 'Move' })
export type MoveView = Static<typeof MoveView>

export const MoveList = Type.Object({ items: Type.Array(MoveView) }, { title: 'MoveList' })
export const MoveParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', description: 'the id POST /tenants/:slug/move answered' }) })

export function moveView (move: MoveRecord): MoveView {
  return {
    id: move.id,
    slug: move.slug,
    from: move.from,
    to: move.to,
    phase: move.phase,
    keepSource: move.keepSource,
    rowsCopied: move.rowsCopied,
    changesApplied: move.changesApplied,
    freezeMs: move.freezeMs,
    error: move.error,
    startedAt: move.startedAt.toISOString(),
    updatedAt: move.updatedAt.toISOString(),
    finishedAt: move.finishedAt === null ? null : move.finishedAt.toISOString()
  }
}
