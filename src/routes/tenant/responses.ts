import { ErrorBody } from '../../schemas/error.js'

/**
 * The error answers every tenant route may give, for its OpenAPI responses: 400 (invalid host or
 * input), 403 (suspended tenant), 404 (unknown host, or no such item), 503 (tenant or catalog
 * unavailable, no connection free in time). Each body is `ErrorBody`, with a stable `code`.
 */
export const tenantErrorResponses = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 503: ErrorBody }
