import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { SiloError, type ErrorCode } from './errors.js'
import { classifyDatabaseError } from './tenancy/database-errors.js'

interface HttpError {
  statusCode: number
  code: ErrorCode
  message: string
  retryAfter?: number | undefined
}

/** Fastify's own 4xx errors (body parsing, content type, size) mapped onto Silo's codes. */
function fromFastify (error: FastifyError): HttpError | null {
  const status = error.statusCode ?? 500
  if (status < 400 || status >= 500) return null
  if (status === 413) return { statusCode: 413, code: 'PAYLOAD_TOO_LARGE', message: 'Request body is too large' }
  if (status === 415) return { statusCode: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: error.message }
  if (status === 404) return { statusCode: 404, code: 'NOT_FOUND', message: 'Not found' }
  return { statusCode: 400, code: 'VALIDATION_FAILED', message: error.message }
}

export function toHttpError (error: unknown): HttpError {
  const silo = classifyDatabaseError(error)
  if (silo !== null) return { statusCode: silo.statusCode, code: silo.code, message: silo.message, retryAfter: silo.retryAfter }
  const fastifyError = error as FastifyError
  if (fastifyError.validation !== undefined) {
    return { statusCode: 400, code: 'VALIDATION_FAILED', message: fastifyError.message }
  }
  return fromFastify(fastifyError) ?? { statusCode: 500, code: 'INTERNAL_ERROR', message: 'Internal server error' }
}

export function sendError (reply: FastifyReply, error: HttpError): FastifyReply {
  if (error.retryAfter !== undefined) void reply.header('retry-after', String(error.retryAfter))
  return reply.code(error.statusCode).type('application/json').send({
    statusCode: error.statusCode,
    code: error.code,
    error: STATUS_CODES[error.statusCode] ?? 'Error',
    message: error.message
  })
}

/**
 * The one place errors become responses: `{ statusCode, code, error, message }`. A 5xx body
 * carries only Silo's own message, never a stack, SQL or connection details; the cause goes
 * to the log.
 */
export function registerErrorHandling (app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const http = toHttpError(error)
    if (http.statusCode >= 500) {
      const cause = error instanceof SiloError ? error.cause : error
      request.log.error({ err: cause ?? error, code: http.code }, http.message)
    } else {
      request.log.info({ code: http.code }, http.message)
    }
    return sendError(reply, http)
  })
  app.setNotFoundHandler((request, reply) => sendError(reply, {
    statusCode: 404, code: 'NOT_FOUND', message: `Route ${request.method} ${request.url.split('?')[0] ?? ''} not found`
  }))
}
