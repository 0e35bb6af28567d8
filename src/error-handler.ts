import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { SiloError, statusOf, type ErrorCode } from './errors.js'
import { logIncoming } from './request-logging.js'
import { classifyDatabaseError } from './tenancy/database-errors.js'

interface HttpError {
  statusCode: number
  code: ErrorCode
  message: string
  retryAfter?: number | undefined
}

/** An error Silo answers without a SiloError: its status from the table in src/errors.ts. */
const httpError = (code: ErrorCode, message: string): HttpError => ({ statusCode: statusOf(code), code, message })

/** Fastify's own 4xx errors (body parsing, content type, size) mapped onto Silo's codes. */
function fromFastify (error: FastifyError): HttpError | null {
  const status = error.statusCode ?? 500
  if (status < 400 || status >= 500) return null
  if (status === 413) return httpError('PAYLOAD_TOO_LARGE', 'Request body is too large')
  if (status === 415) return httpError('UNSUPPORTED_MEDIA_TYPE', error.message)
  // A plugin's 403 (@fastify/static refusing a path that climbs out of its root) says that
  // something is there: answered as what does not exist, not as a validation failure.
  if (status === 404 || status === 403) return httpError('NOT_FOUND', 'Not found')
  return httpError('VALIDATION_FAILED', error.message)
}

export function toHttpError (error: unknown): HttpError {
  const silo = classifyDatabaseError(error)
  if (silo !== null) return { statusCode: silo.statusCode, code: silo.code, message: silo.message, retryAfter: silo.retryAfter }
  const fastifyError = error as FastifyError
  if (fastifyError.validation !== undefined) {
    return httpError('VALIDATION_FAILED', fastifyError.message)
  }
  return fromFastify(fastifyError) ?? httpError('INTERNAL_ERROR', 'Internal server error')
}

/** Sends the body as text: an object would go through the route's response serializers, a measurable share of a 404. */
export function sendError (reply: FastifyReply, error: HttpError): FastifyReply {
  if (error.retryAfter !== undefined) void reply.header('retry-after', String(error.retryAfter))
  return reply.code(error.statusCode).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify({
    statusCode: error.statusCode,
    code: error.code,
    error: STATUS_CODES[error.statusCode] ?? 'Error',
    message: error.message
  }))
}

/**
 * Logs `error` and answers it in the contract's shape. It is the error handler, and the tenancy
 * plugin calls it directly for the requests it refuses: handing an error to Fastify's error path
 * (onError hooks, the handler chain) cost as much again as answering it, which made a flood of
 * unknown hosts twice as expensive to turn away as a request for a constant route.
 */
export function replyWithError (error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  logIncoming(request)
  const http = toHttpError(error)
  if (http.statusCode >= 500) {
    const cause = error instanceof SiloError ? error.cause : error
    request.log.error({ err: cause ?? error, code: http.code }, http.message)
  } else {
    request.log.info({ code: http.code }, http.message)
  }
  return sendError(reply, http)
}

/**
 * The one place errors become responses: `{ statusCode, code, error, message }`. A 5xx body
 * carries only Silo's own message, never a stack, SQL or connection details; the cause goes
 * to the log.
 */
export function registerErrorHandling (app: FastifyInstance): void {
  app.setErrorHandler(replyWithError)
  app.setNotFoundHandler((request, reply) => sendError(reply,
    httpError('NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0] ?? ''} not found`)))
}

/** Fastify's `frameworkErrors` option: errors raised before routing (bad URL encoding, over-long parameters). */
export function frameworkErrors (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  void sendError(reply, toHttpError(error))
}

/** How a request Node's HTTP parser refused is answered, by the parser's error code. */
const CLIENT_ERRORS: Record<string, HttpError> = {
  ERR_HTTP_REQUEST_TIMEOUT: httpError('REQUEST_TIMEOUT', 'The request took too long to arrive'),
  HPE_HEADER_OVERFLOW: httpError('HEADERS_TOO_LARGE', 'Request headers are too large')
}
const MALFORMED_REQUEST = httpError('VALIDATION_FAILED', 'Malformed HTTP request')

/**
 * Fastify's `clientErrorHandler`: a request Node's HTTP parser refused (control bytes in a
 * header, a malformed request line, headers too large) never reaches Fastify; it still gets a
 * JSON error with a code, then the connection is closed.
 */
export function clientErrorHandler (error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed || !socket.writable) return
  const { statusCode: status, code, message } = CLIENT_ERRORS[error.code ?? ''] ?? MALFORMED_REQUEST
  const body = JSON.stringify({ statusCode: status, code, error: STATUS_CODES[status] ?? 'Error', message })
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`, () => { socket.destroy() })
}

/**
 * The http server's `checkExpectation` event: a request whose `Expect` is not `100-continue`
 * (which Node answers itself) gets the contract's 417 instead of Node's bare one. Node does not
 * hand such a request to Fastify, so it is answered here.
 */
export function expectationFailed (_request: IncomingMessage, response: ServerResponse): void {
  const status = statusOf('EXPECTATION_FAILED')
  const body = JSON.stringify({
    statusCode: status,
    code: 'EXPECTATION_FAILED' satisfies ErrorCode,
    error: STATUS_CODES[status],
    message: 'The only expectation Silo meets is Expect: 100-continue'
  })
  // Closed after the answer: the body the request announced may or may not follow.
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
  response.end(body)
}
