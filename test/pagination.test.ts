import t from './helpers/tap.js'
import { decodeCursor, encodeCursor, pageStart } from '../src/routes/tenant/pagination.js'
import { SiloError } from '../src/errors.js'

// Pure: no database. The keyset query itself is exercised through the routes in articles.test.ts.
t.test('a cursor round-trips every id a page can end on', async (t) => {
  for (const id of [1, 2, 9, 10, 99999, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
    const cursor = encodeCursor(id)
    t.match(cursor, /^[A-Za-z0-9_-]+$/, `${id}: base64url only`)
    t.equal(decodeCursor(cursor), id, `${id} comes back`)
  }
})

t.test('a cursor this API did not issue is refused, never read as some other id', async (t) => {
  const forged = (text: string): string => Buffer.from(text).toString('base64url')
  for (const cursor of ['', 'abc', forged('a:0'), forged('a:-1'), forged('a:01'), forged('a:1.5'), forged('a:1e3'), forged('b:1'), forged(' a:1'), forged('a:1 '),
    forged('a:12345678901234567'), forged(`a:${Number.MAX_SAFE_INTEGER + 1}`), forged('a:99999999999999999')]) {
    t.equal(decodeCursor(cursor), null, JSON.stringify(Buffer.from(cursor, 'base64url').toString('utf8')))
  }
})

t.test('pageStart: no cursor is the first page; a foreign cursor is 400 VALIDATION_FAILED', async (t) => {
  t.equal(pageStart({ limit: 20 }), null)
  t.equal(pageStart({ limit: 20, cursor: encodeCursor(42) }), 42)
  const error = t.throws(() => pageStart({ limit: 20, cursor: 'bm90LWEtY3Vyc29y' })) as unknown
  t.ok(error instanceof SiloError)
  t.match(error, { code: 'VALIDATION_FAILED', statusCode: 400 })
})
