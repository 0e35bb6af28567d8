// Pure unit tests: needs no database and no network.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto'
import { createRequire } from 'node:module'
import t from './helpers/tap.js'
import { assertVerifier, scramVerifier } from '../src/db/scram.js'

interface Verifier { iterations: number, salt: Buffer, storedKey: Buffer, serverKey: Buffer }

/** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, the parts decoded; throws when it is not that. */
function parse (verifier: string): Verifier {
  const match = /^SCRAM-SHA-256\$([1-9][0-9]*):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/.exec(verifier)
  if (match === null) throw new Error(`not a SCRAM-SHA-256 verifier: ${verifier}`)
  const [, iterations, salt, storedKey, serverKey] = match as unknown as [string, string, string, string, string]
  return { iterations: Number(iterations), salt: Buffer.from(salt, 'base64'), storedKey: Buffer.from(storedKey, 'base64'), serverKey: Buffer.from(serverKey, 'base64') }
}

/** RFC 5802 §3, computed here from the password and the salt and iterations the verifier names. */
function expectedKeys (password: string, salt: Buffer, iterations: number): { storedKey: Buffer, serverKey: Buffer } {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  return {
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest()
  }
}

const PASSWORDS = [
  randomBytes(24).toString('base64url'),
  randomBytes(24).toString('hex'),
  'pencil',
  'a',
  "quote'semicolon;dollar$colon:back\\slash",
  ' spaces inside and out ',
  '~'.repeat(200)
]

t.test('the verifier has the form PostgreSQL stores', async (t) => {
  for (const password of PASSWORDS) {
    const verifier = scramVerifier(password)
    t.match(verifier, /^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/, 'SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>')
    const parsed = parse(verifier)
    t.ok(Number.isSafeInteger(parsed.iterations) && parsed.iterations >= 1, `iterations ${parsed.iterations}`)
    t.equal(parsed.salt.length, 16, '16 bytes of salt')
    t.equal(parsed.storedKey.length, 32, 'StoredKey is a SHA-256')
    t.equal(parsed.serverKey.length, 32, 'ServerKey is an HMAC-SHA-256')
    if (password.length >= 8) t.notOk(verifier.includes(password), 'the password is not in the verifier')
    t.equal(assertVerifier(verifier), verifier, 'assertVerifier accepts it')
  }
})

t.test('StoredKey and ServerKey are those of RFC 5802 for the salt and iterations named', async (t) => {
  for (const password of PASSWORDS) {
    const { iterations, salt, storedKey, serverKey } = parse(scramVerifier(password))
    const expected = expectedKeys(password, salt, iterations)
    t.ok(timingSafeEqual(storedKey, expected.storedKey), `StoredKey of ${JSON.stringify(password.slice(0, 12))}`)
    t.ok(timingSafeEqual(serverKey, expected.serverKey), `ServerKey of ${JSON.stringify(password.slice(0, 12))}`)
    const other = expectedKeys(`${password}x`, salt, iterations)
    t.notOk(storedKey.equals(other.storedKey), 'another password gives another StoredKey')
  }
})

t.test('a given salt is used as given; each call without one draws a new salt', async (t) => {
  const salt = randomBytes(16)
  const first = scramVerifier('pencil', salt)
  t.ok(parse(first).salt.equals(salt), 'the salt in the verifier is the one given')
  t.equal(scramVerifier('pencil', salt), first, 'same password, same salt: same verifier')
  t.not(scramVerifier('pencil!', salt), first, 'another password, same salt: another verifier')
  const salts = new Set(Array.from({ length: 20 }, () => parse(scramVerifier('pencil')).salt.toString('base64')))
  t.equal(salts.size, 20, 'twenty calls, twenty salts')
  const verifiers = new Set(Array.from({ length: 20 }, () => scramVerifier('pencil')))
  t.equal(verifiers.size, 20, 'twenty calls, twenty verifiers')
})

/** The SCRAM client pg logs in with (the one Silo's tenant pools use), for an end-to-end exchange. */
interface SaslSession { response: string, serverSignature?: string }
const sasl = createRequire(import.meta.url)('pg/lib/crypto/sasl.js') as {
  startSession: (mechanisms: string[]) => SaslSession & { clientNonce: string }
  continueSession: (session: SaslSession, password: string, serverData: string) => Promise<void>
  finalizeSession: (session: SaslSession, serverData: string) => void
}

/**
 * The server side of a SCRAM-SHA-256 login (RFC 5802 §3) holding only the verifier, as
 * PostgreSQL does: true when pg's client proves the password and accepts the server's signature.
 */
async function logsIn (verifier: string, password: string): Promise<boolean> {
  const { iterations, salt, storedKey, serverKey } = parse(verifier)
  const session = sasl.startSession(['SCRAM-SHA-256'])
  const clientFirstBare = session.response.replace(/^n,,/, '')
  const nonce = `${session.clientNonce}${randomBytes(18).toString('base64')}`
  const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`
  await sasl.continueSession(session, password, serverFirst)
  const proofAt = session.response.lastIndexOf(',p=')
  const clientFinalWithoutProof = session.response.slice(0, proofAt)
  const proof = Buffer.from(session.response.slice(proofAt + 3), 'base64')
  const authMessage = `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`
  const clientSignature = createHmac('sha256', storedKey).update(authMessage).digest()
  const clientKey = Buffer.from(proof.map((byte, index) => byte ^ (clientSignature[index] ?? 0)))
  if (!createHash('sha256').update(clientKey).digest().equals(storedKey)) return false
  sasl.finalizeSession(session, `v=${createHmac('sha256', serverKey).update(authMessage).digest('base64')}`)
  return true
}

t.test("pg's SCRAM client logs in against the verifier with the password, and not with another", async (t) => {
  for (const password of PASSWORDS) {
    const verifier = scramVerifier(password)
    t.equal(await logsIn(verifier, password), true, `logs in with ${JSON.stringify(password.slice(0, 12))}`)
    t.equal(await logsIn(verifier, `${password}1`), false, 'a wrong password does not')
  }
})

t.test('assertVerifier lets through only the verifier alphabet', async (t) => {
  const good = scramVerifier('pencil')
  t.equal(assertVerifier(good), good)
  const bad = [
    '',
    'pencil',
    'md5' + 'a'.repeat(32),
    `${good}'`,
    `${good}\n`,
    `${good};`,
    `${good} `,
    `'; DROP ROLE silo; --${good}`,
    good.replace('SCRAM-SHA-256', 'SCRAM-SHA-1'),
    good.replace(/\$[0-9]+:/, '$x:'),
    good.replace(/\$[0-9]+:/, '$:'),
    good.slice(0, good.lastIndexOf(':')),
    good.replace(/:([^:]+)$/, ':$1:extra'),
    good.replace('$', "$'")
  ]
  for (const verifier of bad) t.throws(() => assertVerifier(verifier), TypeError, JSON.stringify(verifier.slice(-30)))
})
