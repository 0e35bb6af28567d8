import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'

/** Secrets of the embedded dev mode, generated once and kept beside its data (mode 0600). */
export interface DevSecrets {
  postgresPassword: string
  adminToken: string
  secretKey: string
}

const generate = (): string => randomBytes(24).toString('base64url')

export async function loadDevSecrets (dataDir: string): Promise<DevSecrets> {
  const file = join(resolve(dataDir), 'dev-secrets.json')
  const stored = await readFile(file, 'utf8').then((text) => JSON.parse(text) as Partial<DevSecrets>, () => ({} as Partial<DevSecrets>))
  const secrets: DevSecrets = {
    postgresPassword: stored.postgresPassword ?? generate(),
    adminToken: stored.adminToken ?? generate(),
    secretKey: stored.secretKey ?? generate()
  }
  if (stored.postgresPassword === undefined || stored.adminToken === undefined || stored.secretKey === undefined) {
    await mkdir(resolve(dataDir), { recursive: true })
    await writeFile(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 })
  }
  return secrets
}
