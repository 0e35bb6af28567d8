import { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'

const incomingLogged = Symbol('silo.incomingLogged')
type LoggedRequest = FastifyRequest & { [incomingLogged]?: true }

/** Logs a request's "incoming request" line once, through its logger as it is at that point. */
export function logIncoming (request: FastifyRequest): void {
  if ((request as LoggedRequest)[incomingLogged] === true) return
  ;(request as LoggedRequest)[incomingLogged] = true
  request.log.info({ req: request }, 'incoming request')
}

/**
 * Whether `logger` writes `info` lines, the level of "incoming request" and "request completed".
 * Read once, when the app is built: Silo's level is set by LOG_LEVEL at start and not changed.
 */
export function writesInfo (logger: FastifyBaseLogger): boolean {
  return (logger as FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') ?? true
}

/**
 * Fastify logs "incoming request" as a request arrives, before any hook runs, so before the
 * tenant of its Host is known: that line could not name the tenant. Silo logs it from hooks
 * instead (registerRequestLogging), once the tenancy hook has put the tenant's child logger in
 * place or refused the request, so every line of a tenant request carries `tenant`.
 */
export class TenantAwareLogController extends LogController {
  readonly #info: boolean

  /** `info`: whether the app's logger writes info lines (writesInfo); when it does not, a request that ends without an error costs nothing here. */
  constructor (info: boolean) {
    super()
    this.#info = info
  }

  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    // Only "request errored" could be written (at `error`): no line object made, no response time read, for the rest.
    if (!this.#info) {
      if (error != null) super.requestCompleted(error, request, reply, metadata)
      return
    }
    // A request answered without passing the hooks still gets its line.
    if (!this.isLogDisabled(request)) logIncoming(request)
    super.requestCompleted(error, request, reply, metadata)
  }
}

/**
 * Register after the tenancy plugin, so the line is written once the tenant is resolved
 * (onRequest) or the request was refused before that (onError). Nothing is registered when the
 * app's logger writes no info line (`info` false, see writesInfo): a hook is a call on every
 * request's path.
 */
export function registerRequestLogging (app: FastifyInstance, info: boolean): void {
  if (!info) return
  app.addHook('onRequest', (request, _reply, done) => {
    logIncoming(request)
    done()
  })
  app.addHook('onError', (request, _reply, _error, done) => {
    logIncoming(request)
    done()
  })
}
