import { readFileSync } from 'node:fs'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { notFound } from '../../errors.js'

/**
 * The operator console's files, as scripts/build.mjs bundles them into dist/console: compiled,
 * this module is dist/src/routes/admin/console.js; from the sources (tsx) it is under src/, and
 * the bundle is still the one in dist/.
 */
const consoleDir = new URL(import.meta.url.endsWith('.js') ? '../../../console/' : '../../../dist/console/', import.meta.url)

/** Every file the console has, by the name it is asked for: nothing else is ever read from disk. */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8'
}

/**
 * The console's own script and style only: no inline script or style, no other origin, and the
 * API is the page's own origin. The token it holds cannot be sent anywhere else.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self'",
  "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"
].join('; ')

function load (name: string): Buffer | null {
  try {
    return readFileSync(new URL(name, consoleDir))
  } catch {
    return null
  }
}

/**
 * Serves the console's static files on the admin host (registered in the admin scope, which gives
 * them its host constraint). They need no token, as the docs do not: every API call the page makes
 * carries the one the operator types. Read once at start-up; left out of the OpenAPI document.
 */
export async function consoleRoutes (app: FastifyInstance): Promise<void> {
  const files = new Map(Object.entries(FILES).map(([name, type]) => [name, { type, body: load(name) }]))
  const send = (name: string) => async (_request: unknown, reply: FastifyReply): Promise<FastifyReply> => {
    const file = files.get(name)
    if (file?.body == null) throw notFound(name === 'index.html' ? 'The console is not built: run npm run build' : `No console file ${name}`)
    void reply.type(file.type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
    return await reply.send(file.body)
  }
  const options = { schema: { hide: true }, config: { public: true } }
  app.get('/console', options, send('index.html'))
  app.get('/console/', options, send('index.html'))
  for (const name of Object.keys(FILES)) app.get(`/console/${name}`, options, send(name))
}
