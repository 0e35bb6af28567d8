import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto'

const VERSION = 'v1'

/**
 * Encrypts tenant credentials at rest in the catalog with AES-256-GCM. The key is derived
 * from SECRET_KEY with scrypt (once per process), so a passphrase is as good as raw bytes.
 * Format: `v1:<iv>:<tag>:<ciphertext>`, each base64url.
 */
export class CredentialCipher {
  readonly #key: Buffer

  constructor (secretKey: string) {
    this.#key = scryptSync(secretKey, 'silo/credentials/v1', 32)
  }

  encrypt (plaintext: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join(':')
  }

  decrypt (sealed: string): string {
    const [version, iv, tag, ciphertext] = sealed.split(':')
    if (version !== VERSION || iv === undefined || tag === undefined || ciphertext === undefined) {
      throw new Error('Unrecognised credential format')
    }
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    try {
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8')
    } catch {
      throw new Error('Credential cannot be decrypted: SECRET_KEY differs from the one it was stored with')
    }
  }
}
