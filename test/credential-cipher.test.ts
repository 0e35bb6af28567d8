// Pure unit tests: needs no database and no network.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, scryptSync } from 'node:crypto'
import t from './helpers/tap.js'
import type { Test } from 'tap'
import { CredentialCipher, CredentialUndecryptable } from '../src/catalog/credential-cipher.js'

const secret = (label: string): string => `${label}-${randomBytes(16).toString('hex')}`
const KEY_A = secret('key-a')
const KEY_B = secret('key-b')
const KEY_C = secret('key-c')
const PLAINTEXT = `tenant-password-${randomBytes(12).toString('hex')}`

/** The key and key id the README and the module describe: scrypt of the secret, a 72-bit HMAC fingerprint. */
const keyOf = (secretKey: string): Buffer => scryptSync(secretKey, 'silo/credentials/v1', 32)
const expectedKeyId = (secretKey: string): string =>
  createHmac('sha256', keyOf(secretKey)).update('silo/key-id').digest().subarray(0, 9).toString('base64url')

/** A credential in the format before key ids, sealed here with node:crypto. */
function sealV1 (plaintext: string, secretKey: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', keyOf(secretKey), iv)
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join(':')
}

/** The sealed string with one byte of one part (v2: 2 iv, 3 tag, 4 body; v1: 1 iv, 2 tag, 3 body) flipped, re-encoded. */
function flipByte (sealed: string, part: number, index = 0): string {
  const parts = sealed.split(':')
  const bytes = Buffer.from(parts[part] ?? '', 'base64url')
  bytes[index] = (bytes[index] ?? 0) ^ 0x01
  parts[part] = bytes.toString('base64url')
  return parts.join(':')
}

/** The CredentialUndecryptable `open` throws; fails the test when it throws nothing or something else. */
function failureOf (t: Test, open: () => unknown): CredentialUndecryptable {
  try {
    open()
  } catch (error) {
    t.type(error, CredentialUndecryptable)
    t.type(error, Error)
    return error as CredentialUndecryptable
  }
  t.fail('it opened')
  return new CredentialUndecryptable('malformed', '')
}

/** Nothing secret in a message: no key, no plaintext, no part of the sealed value. */
function assertNoLeak (t: Test, message: string, sealed: string): void {
  for (const key of [KEY_A, KEY_B, KEY_C]) t.notOk(message.includes(key), 'no key in the message')
  t.notOk(message.includes(PLAINTEXT), 'no plaintext in the message')
  // Every part after the version (v1) or the key id (v2): IV, tag and ciphertext.
  const parts = sealed.split(':').slice(sealed.startsWith('v2:') ? 2 : 1)
  for (const part of parts) if (part.length > 0) t.notOk(message.includes(part), 'no part of the ciphertext in the message')
}

const cipherA = new CredentialCipher({ current: KEY_A })

t.test('encrypt then decrypt gives the plaintext back', async (t) => {
  for (const plaintext of [PLAINTEXT, '', 'a:b:c', 'v2:x:y:z:w', 'p\u00e4ss \u{1f511} \u0000end', 'x'.repeat(10_000)]) {
    t.equal(cipherA.decrypt(cipherA.encrypt(plaintext)), plaintext, `round trip of ${JSON.stringify(plaintext.slice(0, 20))}`)
  }
  t.equal(new CredentialCipher({ current: KEY_A }).decrypt(cipherA.encrypt(PLAINTEXT)), PLAINTEXT, 'another instance with the same key opens it')
})

t.test('format v2:<key id>:<iv>:<tag>:<ciphertext>, AES-256-GCM under the scrypt key', async (t) => {
  const sealed = cipherA.encrypt(PLAINTEXT)
  const parts = sealed.split(':')
  t.equal(parts.length, 5, 'five parts')
  const [version, keyId, iv, tag, body] = parts as [string, string, string, string, string]
  t.equal(version, 'v2')
  t.equal(keyId, cipherA.keyId, 'the key id the cipher reports')
  t.equal(keyId, cipherA.writeKeyId, 'written with the write key')
  for (const part of [iv, tag, body]) t.match(part, /^[A-Za-z0-9_-]*$/, 'base64url')
  t.equal(Buffer.from(iv, 'base64url').length, 12, '96-bit IV')
  t.equal(Buffer.from(tag, 'base64url').length, 16, '128-bit tag')
  t.equal(Buffer.from(body, 'base64url').length, Buffer.byteLength(PLAINTEXT), 'ciphertext as long as the plaintext')
  t.notOk(sealed.includes(PLAINTEXT), 'no plaintext in the sealed value')
  t.notOk(sealed.includes(KEY_A), 'no key in the sealed value')
  // Opened independently of the module, with node:crypto and the key derivation it documents.
  const decipher = createDecipheriv('aes-256-gcm', keyOf(KEY_A), Buffer.from(iv, 'base64url'), { authTagLength: 16 })
  decipher.setAuthTag(Buffer.from(tag, 'base64url'))
  const opened = Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8')
  t.equal(opened, PLAINTEXT, 'node:crypto opens it with scrypt(SECRET_KEY)')
  t.same(cipherA.open(sealed), { plaintext: PLAINTEXT, keyId: cipherA.keyId }, 'open names the key that opened it')
})

t.test('two encryptions of the same plaintext differ (random IV)', async (t) => {
  const first = cipherA.encrypt(PLAINTEXT)
  const second = cipherA.encrypt(PLAINTEXT)
  t.not(first, second)
  t.not(first.split(':')[2], second.split(':')[2], 'different IVs')
  t.not(first.split(':')[4], second.split(':')[4], 'different ciphertexts')
  const ivs = new Set(Array.from({ length: 50 }, () => cipherA.encrypt('same').split(':')[2]))
  t.equal(ivs.size, 50, 'fifty IVs, all different')
})

t.test('key ids: a fingerprint of the key, never the key', async (t) => {
  const cipherB = new CredentialCipher({ current: KEY_B })
  t.not(cipherA.keyId, cipherB.keyId, 'two secrets, two ids')
  t.equal(new CredentialCipher({ current: KEY_A }).keyId, cipherA.keyId, 'the same secret, the same id')
  t.equal(cipherA.keyId, expectedKeyId(KEY_A), 'HMAC of the derived key, 72 bits in base64url')
  t.match(cipherA.keyId, /^[A-Za-z0-9_-]{12}$/, 'no ":" that would break the format')
  for (const [key, cipher] of [[KEY_A, cipherA], [KEY_B, cipherB]] as const) {
    t.notOk(key.includes(cipher.keyId), 'the id is no part of the secret')
    t.notOk(cipher.keyId.includes(key.slice(0, 8)), 'the id holds no part of the secret')
    t.notOk(cipher.describeKeys().includes(key), 'describeKeys does not name the secret')
  }
  t.equal(cipherA.describeKeys(), `SECRET_KEY (key id ${cipherA.keyId})`)
  t.equal(cipherA.previousKeyId, undefined, 'no previous key')
  t.equal(new CredentialCipher({ current: KEY_A, previous: KEY_A }).previousKeyId, undefined, 'a previous key equal to the current one is not a second key')
})

t.test('rotation: a credential sealed under the previous key opens, and is resealed under the current one', async (t) => {
  const sealedUnderA = cipherA.encrypt(PLAINTEXT)
  const rotating = new CredentialCipher({ current: KEY_B, previous: KEY_A })
  t.equal(rotating.previousKeyId, cipherA.keyId, 'SECRET_KEY_PREVIOUS is held under its id')
  t.ok(rotating.holds(cipherA.keyId), 'holds the previous key')
  t.ok(rotating.holds(rotating.keyId), 'holds the current key')
  t.notOk(rotating.holds(new CredentialCipher({ current: KEY_C }).keyId), 'does not hold another key')
  t.equal(rotating.decrypt(sealedUnderA), PLAINTEXT, 'opens a credential sealed under the previous key')
  t.equal(rotating.open(sealedUnderA).keyId, cipherA.keyId, 'and says which key opened it')
  t.match(rotating.describeKeys(), new RegExp(`^SECRET_KEY \\(key id ${rotating.keyId}\\) and SECRET_KEY_PREVIOUS \\(key id ${cipherA.keyId}\\)$`))

  const fresh = rotating.encrypt(PLAINTEXT)
  t.equal(fresh.split(':')[1], rotating.keyId, 'new credentials are sealed under SECRET_KEY')
  t.throws(() => cipherA.decrypt(fresh), CredentialUndecryptable, 'which the old key alone cannot open')

  const resealed = rotating.resealed(sealedUnderA)
  if (resealed === undefined) throw new Error('expected a resealed credential')
  t.equal(resealed.split(':')[1], rotating.keyId, 'resealed under SECRET_KEY')
  t.equal(new CredentialCipher({ current: KEY_B }).decrypt(resealed), PLAINTEXT, 'the new key alone opens the resealed one')
  t.equal(rotating.resealed(fresh), undefined, 'nothing to do for one already under SECRET_KEY')

  rotating.useForWriting(cipherA.keyId)
  t.equal(rotating.writeKeyId, cipherA.keyId, 'writing with the previous key while the catalog is under it')
  t.equal(cipherA.decrypt(rotating.encrypt(PLAINTEXT)), PLAINTEXT, 'which the old key opens')
  t.throws(() => rotating.useForWriting('not-a-key-id'), /not held/, 'cannot write with a key it does not hold')
})

t.test('a credential under a key not held: unknown-key, and the message leaks nothing', async (t) => {
  const sealed = cipherA.encrypt(PLAINTEXT)
  const other = new CredentialCipher({ current: KEY_C, previous: KEY_B })
  const error = failureOf(t, () => other.decrypt(sealed))
  t.equal(error.reason, 'unknown-key')
  t.equal(error.keyId, cipherA.keyId, 'names the key id the credential names')
  t.equal(error.name, 'CredentialUndecryptable')
  t.ok(error.message.includes(cipherA.keyId), 'the message names the missing key id')
  t.ok(error.message.includes(other.keyId) && error.message.includes(`${other.previousKeyId ?? '?'}`), 'and the ids of the keys held')
  assertNoLeak(t, error.message, sealed)
  assertNoLeak(t, String(error.stack), sealed)
})

t.test('a tampered credential: damaged, and the message leaks nothing', async (t) => {
  const sealed = cipherA.encrypt(PLAINTEXT)
  const tampered: Array<[string, string]> = [
    ['a flipped tag byte', flipByte(sealed, 3, 0)],
    ['the last tag byte flipped', flipByte(sealed, 3, 15)],
    ['a flipped ciphertext byte', flipByte(sealed, 4, 3)],
    ['a flipped IV byte', flipByte(sealed, 2, 11)],
    ['a truncated tag', sealed.split(':').map((part, index) => index === 3 ? Buffer.from(part, 'base64url').subarray(0, 15).toString('base64url') : part).join(':')],
    ['an empty tag', sealed.split(':').map((part, index) => index === 3 ? '' : part).join(':')],
    ['a short IV', sealed.split(':').map((part, index) => index === 2 ? Buffer.from(part, 'base64url').subarray(0, 8).toString('base64url') : part).join(':')],
    ['a truncated ciphertext', sealed.split(':').map((part, index) => index === 4 ? Buffer.from(part, 'base64url').subarray(1).toString('base64url') : part).join(':')],
    ['the tag of another sealing', (() => { const parts = sealed.split(':'); parts[3] = cipherA.encrypt(PLAINTEXT).split(':')[3] ?? ''; return parts.join(':') })()]
  ]
  for (const [what, value] of tampered) {
    t.not(value, sealed, `${what} changes the value`)
    const error = failureOf(t, () => cipherA.decrypt(value))
    t.equal(error.reason, 'damaged', what)
    t.equal(error.keyId, cipherA.keyId, `${what}: names the key id`)
    assertNoLeak(t, error.message, sealed)
  }
  // A v2 credential that names one held key but was sealed under another does not authenticate.
  const rotating = new CredentialCipher({ current: KEY_B, previous: KEY_A })
  const lying = ['v2', rotating.keyId, ...sealed.split(':').slice(2)].join(':')
  t.equal(failureOf(t, () => rotating.decrypt(lying)).reason, 'damaged', 'a key id that is not the sealing key')
})

t.test('values in no known format: malformed', async (t) => {
  for (const value of ['', 'plain-password', 'v3:a:b:c:d', 'v2:a:b:c', 'v2:a:b:c:d:e', 'v1:a:b', 'V2:a:b:c:d']) {
    const error = failureOf(t, () => cipherA.decrypt(value))
    t.equal(error.reason, 'malformed', JSON.stringify(value))
    t.equal(error.keyId, undefined, `${JSON.stringify(value)} names no key`)
  }
})

t.test('format v1 (before key ids) is still read, by trying each key held', async (t) => {
  const v1 = sealV1(PLAINTEXT, KEY_A)
  t.same(cipherA.open(v1), { plaintext: PLAINTEXT, keyId: cipherA.keyId }, 'under SECRET_KEY')
  const rotating = new CredentialCipher({ current: KEY_B, previous: KEY_A })
  t.same(rotating.open(v1), { plaintext: PLAINTEXT, keyId: cipherA.keyId }, 'under SECRET_KEY_PREVIOUS')
  const resealed = cipherA.resealed(v1)
  t.ok(resealed?.startsWith(`v2:${cipherA.keyId}:`), 'a v1 credential under SECRET_KEY is resealed as v2')
  t.equal(cipherA.decrypt(resealed ?? ''), PLAINTEXT)
  const error = failureOf(t, () => new CredentialCipher({ current: KEY_C }).decrypt(v1))
  t.equal(error.reason, 'no-key-fits')
  t.equal(error.keyId, undefined, 'v1 names no key')
  assertNoLeak(t, error.message, v1)
  t.equal(failureOf(t, () => cipherA.decrypt(flipByte(v1, 2, 0))).reason, 'no-key-fits', 'a damaged v1 credential fits no key')
})
