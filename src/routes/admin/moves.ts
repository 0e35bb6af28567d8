import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Silo } from '../../silo.js'
import { notFound } from '../../errors.js'
import { tenantNotFoundBySlug } from '../../lifecycle/provisioner.js'
import { SlugParams } from '../../schemas/admin.js'
import { ErrorBody } from '../../schemas/error.js'
import { MoveList, MoveParams, MoveStart, MoveView, moveView as view } from '../../schemas/moves.js'

/** What the move routes use of the core: the mover, and the catalog's record of moves. */
export type AdminMoveDeps = Pick<Silo, 'mover' | 'catalog'>

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody }
const security = [{ bearer: [] }]

/**
 * Moves over HTTP: a move is started (every refusal answered at once, with its code) and goes on
 * in this instance after the answer; its progress is read back by id. A move that fails after
 * its start says so in its record (`phase: failed`, `error`), the tenant served from its source.
 */
export const adminMoveRoutes: FastifyPluginAsyncTypebox<AdminMoveDeps> = async (app, { mover, catalog }) => {
  app.post('/tenants/:slug/move', {
    schema: {
      tags: ['admin'],
      operationId: 'moveTenant',
      summary: 'Move the tenant to another server while it serves (copy, catch up, then a write freeze of at most MOVE_HOLD_MS); answers at once, follow it at GET /moves/:id',
      security,
      params: SlugParams,
      body: MoveStart,
      response: { 202: MoveView, ...errors }
    }
  }, async (request, reply) => {
    const { move, done } = await mover.start(request.params.slug, { to: request.body.to, keepSource: request.body.keepSource === true })
    // Its end is in its record; a failure is logged here too.
    done.catch((error: unknown) => { request.log.warn({ err: error, move: move.id }, 'move failed') })
    return await reply.code(202).header('location', `/moves/${move.id}`).send(view(move))
  })

  app.get('/moves/:id', {
    schema: { tags: ['admin'], operationId: 'getMove', summary: 'A move\'s phase and figures', security, params: MoveParams, response: { 200: MoveView, ...errors } }
  }, async (request) => {
    const move = await catalog.moves.byId(request.params.id)
    if (move === null) throw notFound(`No move ${request.params.id}`)
    return view(move)
  })

  app.get('/tenants/:slug/moves', {
    schema: { tags: ['admin'], operationId: 'listTenantMoves', summary: 'The tenant\'s moves, newest first (the last 20)', security, params: SlugParams, response: { 200: MoveList, ...errors } }
  }, async (request) => {
    const moves = await catalog.moves.ofTenant(request.params.slug)
    if (moves.length === 0 && await catalog.tenantBySlug(request.params.slug) === null) throw tenantNotFoundBySlug(request.params.slug)
    return { items: moves.map(view) }
  })
}
