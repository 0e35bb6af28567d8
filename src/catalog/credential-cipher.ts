import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, scryptSync } from 'node:crypto'

/** The keys a process holds: SECRET_KEY, and during a rotation the key it replaces. */
export interface CredentialKeys {
  /** SECRET_KEY: decrypts, and encrypts once the catalog's credentials are under it. */
  current: string
  /** SECRET_KEY_PREVIOUS: decrypts only. */
  previous?: string | undefined
}

interface DerivedKey {
  id: string
  key: Buffer
  /** Which variable it came from, for messages (never the value). */
  source: 'SECRET_KEY' | 'SECRET_KEY_PREVIOUS'
}

/**
 * Why a stored credential cannot be read. The message names key ids and formats, never a key
 * or any part of the ciphertext.
 */
export class CredentialUndecryptable extends Error {
  constructor (
    readonly reason: 'unknown-key' | 'damaged' | 'no-key-fits' | 'malformed',
    message: string,
    /** The key id the credential names (v2), when it names one. */
    readonly keyId?: string
  ) {
    super(message)
    this.name = 'CredentialUndecryptable'
  }
}

/**
 * The id of a key: a short fingerprint of the derived key (HMAC of a constant, 72 bits), so
 * ciphertexts, the catalog and messages can say which key without saying anything of it.
 * Someone who reads an id can test guesses of SECRET_KEY at scrypt cost, exactly as a stored
 * ciphertext already lets them: a random SECRET_KEY is what protects both.
 */
function keyIdOf (key: Buffer): string {
  return createHmac('sha256', key).update('silo/key-id').digest().subarray(0, 9).toString('base64url')
}

/**
 * Keys derived in this process, by a hash of their secret: scrypt costs some 80 ms of CPU, and a
 * process that opens Silo more than once (a test file; an application that closes and opens it
 * again) derived the same key each time. A few at most: a process holds SECRET_KEY and, during a
 * rotation, SECRET_KEY_PREVIOUS.
 */
const derivedKeys = new Map<string, Buffer>()
const DERIVED_KEYS_KEPT = 4

function derive (secret: string, source: DerivedKey['source']): DerivedKey {
  const memo = createHash('sha256').update(secret).digest('base64')
  let key = derivedKeys.get(memo)
  if (key === undefined) {
    // The salt of the first format: v1 ciphertexts and v2 ones under the same SECRET_KEY share the key.
    key = scryptSync(secret, 'silo/credentials/v1', 32)
    if (derivedKeys.size >= DERIVED_KEYS_KEPT) derivedKeys.delete(derivedKeys.keys().next().value as string)
    derivedKeys.set(memo, key)
  }
  return { id: keyIdOf(key), key, source }
}

const GCM_TAG_BYTES = 16
const GCM_IV_BYTES = 12

/**
 * Encrypts tenant credentials at rest in the catalog with AES-256-GCM. Each key is derived
 * from its secret with scrypt (once per process, see derivedKeys), so a passphrase is as good as raw bytes.
 *
 * Format `v2:<key id>:<iv>:<tag>:<ciphertext>` (base64url parts): the key id says which key
 * sealed it, so a rotation knows what to re-encrypt and a failure says which key is missing.
 * `v1:<iv>:<tag>:<ciphertext>` (before key ids) is still read, by trying each key held.
 */
export class CredentialCipher {
  readonly #keys: DerivedKey[]
  #writeKey: DerivedKey

  constructor (keys: CredentialKeys) {
    const current = derive(keys.current, 'SECRET_KEY')
    this.#keys = [current]
    if (keys.previous !== undefined) {
      const previous = derive(keys.previous, 'SECRET_KEY_PREVIOUS')
      if (previous.id !== current.id) this.#keys.push(previous)
    }
    this.#writeKey = current
  }

  /** The id of SECRET_KEY. */
  get keyId (): string {
    return (this.#keys[0] as DerivedKey).id
  }

  /** The id of SECRET_KEY_PREVIOUS, when set (and not the same key). */
  get previousKeyId (): string | undefined {
    return this.#keys[1]?.id
  }

  /** The key new credentials are sealed with: the catalog's (see catalog-key.ts), SECRET_KEY until told. */
  get writeKeyId (): string {
    return this.#writeKey.id
  }

  holds (keyId: string): boolean {
    return this.#keys.some((key) => key.id === keyId)
  }

  /** Seal new credentials with this held key from now on (the catalog's key, during a rotation the previous one). */
  useForWriting (keyId: string): void {
    const key = this.#keys.find((candidate) => candidate.id === keyId)
    if (key === undefined) throw new Error(`key ${keyId} is not held by this process`)
    this.#writeKey = key
  }

  /** The held keys, for messages: `SECRET_KEY (id x), SECRET_KEY_PREVIOUS (id y)`. */
  describeKeys (): string {
    return this.#keys.map((key) => `${key.source} (key id ${key.id})`).join(' and ')
  }

  encrypt (plaintext: string): string {
    return this.#seal(plaintext, this.#writeKey)
  }

  decrypt (sealed: string): string {
    return this.open(sealed).plaintext
  }

  /** The plaintext and the id of the key that opened it. */
  open (sealed: string): { plaintext: string, keyId: string } {
    const parts = sealed.split(':')
    if (parts[0] === 'v2' && parts.length === 5) {
      const [, keyId, iv, tag, ciphertext] = parts as [string, string, string, string, string]
      const key = this.#keys.find((candidate) => candidate.id === keyId)
      if (key === undefined) {
        throw new CredentialUndecryptable('unknown-key',
          `it was encrypted with key id ${keyId}, which this process does not hold (it holds ${this.describeKeys()})`, keyId)
      }
      const plaintext = unseal(key.key, iv, tag, ciphertext)
      if (plaintext === undefined) {
        throw new CredentialUndecryptable('damaged', `it names key id ${keyId} but does not authenticate with it: the stored value is damaged`, keyId)
      }
      return { plaintext, keyId }
    }
    if (parts[0] === 'v1' && parts.length === 4) {
      const [, iv, tag, ciphertext] = parts as [string, string, string, string]
      for (const key of this.#keys) {
        const plaintext = unseal(key.key, iv, tag, ciphertext)
        if (plaintext !== undefined) return { plaintext, keyId: key.id }
      }
      throw new CredentialUndecryptable('no-key-fits', `it was encrypted (format v1) with none of the keys this process holds (${this.describeKeys()})`)
    }
    throw new CredentialUndecryptable('malformed', 'it is not in a format Silo knows')
  }

  /**
   * For a rotation: the credential sealed again with SECRET_KEY, or undefined when it already
   * is (v2 under SECRET_KEY, and it authenticates). Throws CredentialUndecryptable.
   */
  resealed (sealed: string): string | undefined {
    const { plaintext, keyId } = this.open(sealed)
    if (keyId === this.keyId && sealed.startsWith('v2:')) return undefined
    return this.#seal(plaintext, this.#keys[0] as DerivedKey)
  }

  #seal (plaintext: string, key: DerivedKey): string {
    const iv = randomBytes(GCM_IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', key.key, iv)
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return ['v2', key.id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join(':')
  }
}

/** The plaintext, or undefined when the key does not authenticate it (or it is malformed). */
function unseal (key: Buffer, iv: string, tag: string, ciphertext: string): string | undefined {
  const ivBytes = Buffer.from(iv, 'base64url')
  const tagBytes = Buffer.from(tag, 'base64url')
  // A short tag would weaken GCM's authentication: only full-length ones are accepted.
  if (ivBytes.length !== GCM_IV_BYTES || tagBytes.length !== GCM_TAG_BYTES) return undefined
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: GCM_TAG_BYTES })
    decipher.setAuthTag(tagBytes)
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8')
  } catch {
    return undefined
  }
}
