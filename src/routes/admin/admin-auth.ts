import { createHash, timingSafeEqual } from 'node:crypto'
import { SiloError } from '../../errors.js'

const digest = (text: string): Buffer => createHash('sha256').update(text).digest()

/**
 * Checks an Authorization header against the admin token in constant time: both sides are
 * hashed first, so neither the token's length nor its prefix leaks through timing. Without a
 * configured token every request is refused.
 */
export function assertAdminToken (header: string | undefined, token: string | undefined): void {
  const presented = /^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? ''
  const expected = digest(token ?? '')
  const ok = timingSafeEqual(digest(presented), expected) && token !== undefined && presented !== ''
  if (!ok) throw new SiloError('UNAUTHORIZED', 'A valid admin bearer token is required')
}
