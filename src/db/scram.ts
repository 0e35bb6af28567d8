import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'

/**
 * PBKDF2 rounds in a tenant role's verifier. Stretching protects guessable passwords from an
 * offline attack on a stolen verifier; a tenant password is 24 random bytes (192 bits), which
 * no number of rounds makes more or less guessable. The rounds are paid by the client at every
 * login (PostgreSQL sends the count and the client derives the key), so RFC 7677's 4096, meant
 * for human passwords, cost Silo 2.2 ms of CPU per tenant connection opened here, and the
 * provisioner as much again to compute the verifier. 16 rounds cost microseconds.
 */
const ITERATIONS = 16

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802/7677). Silo sends the
 * verifier, not the password, in CREATE/ALTER ROLE, so the plaintext never reaches the
 * server's statement log. The password must be ASCII (SASLprep is then the identity).
 */
export function scramVerifier (password: string, salt: Buffer = randomBytes(16)): string {
  const salted = pbkdf2Sync(password, salt, ITERATIONS, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

const VERIFIER = /^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/

/** A verifier can only contain base64, `$` and `:`; checked before it is quoted into DDL. */
export function assertVerifier (verifier: string): string {
  if (!VERIFIER.test(verifier)) throw new TypeError('Malformed SCRAM verifier')
  return verifier
}
