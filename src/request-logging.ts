import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'

const incomingLogged = Symbol('silo.incomingLogged')
type LoggedRequest = FastifyRequest & { [incomingLogged]?: true }

/** Logs a request's "incoming request" line once, through its logger as it is at that point. */
export function logIncoming (request: FastifyRequest): void {
  if ((request as LoggedRequest)[incomingLogged] === true) return
  ;(request as LoggedRequest)[incomingLogged] = true
  request.log.info({ req: request }, 'incoming request')
}

/**
 * Fastify logs "incoming request" as a request arrives, before any hook runs, so before the
 * tenant of its Host is known: that line could not name the tenant. Silo logs it from hooks
 * instead (registerRequestLogging), once the tenancy hook has put the tenant's child logger in
 * place or refused the request, so every line of a tenant request carries `tenant`.
 */
export class TenantAwareLogController extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    // A request answered without passing the hooks still gets its line.
    if (!this.isLogDisabled(request)) logIncoming(request)
    super.requestCompleted(error, request, reply, metadata)
  }
}

/**
 * Register after the tenancy plugin, so the line is written once the tenant is resolved
 * (onRequest) or the request was refused before that (onError).
 */
export function registerRequestLogging (app: FastifyInstance): void {
  app.addHook('onRequest', (request, _reply, done) => {
    logIncoming(request)
    done()
  })
  app.addHook('onError', (request, _reply, _error, done) => {
    logIncoming(request)
    done()
  })
}
