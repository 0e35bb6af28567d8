import createClient, { type Middleware } from 'openapi-fetch'
import type { paths } from './api-types.js'
import { clearToken, readToken } from './session.js'

/** An answer the console could not use, as a person reads it: the API's code and message (never a stack). */
export class ApiError extends Error {
  readonly code: string
  readonly status: number
  constructor (code: string, message: string, status: number) {
    super(message)
    this.code = code
    this.status = status
  }
}

/** The API's error body (src/schemas/error.ts), as far as an answer carries one. */
const errorOf = (body: unknown, response: Response): ApiError => {
  const { code, message } = (typeof body === 'object' && body !== null ? body : {}) as { code?: unknown, message?: unknown }
  return new ApiError(
    typeof code === 'string' ? code : `HTTP_${response.status}`,
    typeof message === 'string' ? message : response.statusText,
    response.status
  )
}

let unauthorized: (error: ApiError) => void = () => {}
/** What to do when an answer is 401 (the token is cleared first): the console shows its prompt. */
export function onUnauthorized (handler: (error: ApiError) => void): void { unauthorized = handler }

/** Every call carries the token; any 401 forgets it, wherever it came from. */
const bearer: Middleware = {
  onRequest ({ request }) {
    const token = readToken()
    if (token !== null) request.headers.set('authorization', `Bearer ${token}`)
    return request
  },
  async onResponse ({ response }) {
    if (response.status === 401) {
      clearToken()
      unauthorized(errorOf(await response.clone().json().catch(() => null), response))
    }
    return response
  }
}

/** The admin API, typed from the OpenAPI document the service serves (api-types.ts, `npm run console:types`). */
export const api = createClient<paths>({ baseUrl: location.origin })
api.use(bearer)

/** The data of an answer, or an ApiError with the API's code and message. */
export async function ok<T> (call: Promise<{ data?: T, error?: unknown, response: Response }>): Promise<T> {
  let answer: { data?: T, error?: unknown, response: Response }
  try {
    answer = await call
  } catch {
    throw new ApiError('NETWORK_ERROR', 'The service did not answer', 0)
  }
  if (!answer.response.ok) throw errorOf(answer.error, answer.response)
  return answer.data as T
}

/** How an error reads on the page: `CODE: message`. */
export function describe (error: unknown): string {
  if (error instanceof ApiError) return `${error.code}: ${error.message}`
  return `CONSOLE_ERROR: ${error instanceof Error ? error.message : String(error)}`
}
