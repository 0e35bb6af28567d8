import type { FastifyBaseLogger } from 'fastify'
import type { Bindings, ChildLoggerOptions, LevelWithSilent } from 'pino'

type LogMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/** The parent a deferred child is made from: pino's logger (isLevelEnabled tells whether a line would be written). */
type Parent = FastifyBaseLogger & { isLevelEnabled?: (level: LevelWithSilent) => boolean }

/**
 * A request's child logger (its request id, then its tenant), made only when the request writes
 * a line. At a level where no line is written per request (`warn` and above: "incoming request"
 * and "request completed" are `info`), most requests log nothing, and a pino child per request
 * (two: Fastify's and the tenant's) cost about a tenth of a tenant request's throughput. Bindings
 * are gathered here, and the first line actually written makes one pino child with all of them,
 * so every line still carries the request id and the tenant.
 */
export class DeferredChildLogger implements FastifyBaseLogger {
  readonly #parent: Parent
  readonly #bindings: Bindings
  #child: FastifyBaseLogger | undefined

  constructor (parent: Parent, bindings: Bindings) {
    this.#parent = parent
    this.#bindings = bindings
  }

  get level (): string {
    return this.#child?.level ?? this.#parent.level
  }

  set level (level: string) {
    this.#real().level = level
  }

  child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    if (this.#child !== undefined || options !== undefined) return this.#real().child(bindings, options)
    return new DeferredChildLogger(this.#parent, { ...this.#bindings, ...bindings })
  }

  fatal (...args: unknown[]): void { this.#write('fatal', args) }
  error (...args: unknown[]): void { this.#write('error', args) }
  warn (...args: unknown[]): void { this.#write('warn', args) }
  info (...args: unknown[]): void { this.#write('info', args) }
  debug (...args: unknown[]): void { this.#write('debug', args) }
  trace (...args: unknown[]): void { this.#write('trace', args) }
  silent (): void {}

  #write (method: LogMethod, args: unknown[]): void {
    if (this.#child === undefined && this.#parent.isLevelEnabled?.(method) === false) return
    Reflect.apply(this.#real()[method], this.#child, args)
  }

  #real (): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings)
    return this.#child
  }
}

/**
 * Fastify's childLoggerFactory: none for a muted logger; a deferred child where a request writes
 * no line unless something goes wrong (level above `info`); a pino child otherwise (every request
 * writes its lines), or when the route sets options of its own (a log level, serializers).
 */
export function requestLogger (logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  if (logger.level === 'silent') return logger
  const custom = Object.keys(options).length > 0
  if (!custom && (logger as Parent).isLevelEnabled?.('info') === false) return new DeferredChildLogger(logger, bindings)
  return logger.child(bindings, options)
}
