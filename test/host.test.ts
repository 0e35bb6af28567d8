// Pure unit tests: needs no database and no network.
import fc from 'fast-check'
import t from './helpers/tap.js'
import { absoluteTarget, hasDuplicateHost, hostFromHeader, isIpLiteral, normalizeDomain, portOf } from '../src/tenancy/host.js'

const label63 = 'a'.repeat(63)
/** A name of exactly `length` characters: labels of 49 letters between dots, the last one shorter. */
function nameOfLength (length: number): string {
  let name = ''
  for (let index = 0; index < length; index++) name += index % 50 === 49 && index !== length - 1 ? '.' : 'b'
  return name
}

t.test('nameOfLength builds names of the length asked, with valid labels', async (t) => {
  for (const length of [1, 63, 64, 127, 252, 253, 254]) {
    const name = nameOfLength(length)
    t.equal(name.length, length, `length ${length}`)
    t.ok(name.split('.').every((part) => part.length >= 1 && part.length <= 63), `labels of ${length}`)
  }
})

t.test('hostFromHeader normalizes valid hosts', async (t) => {
  const cases: Array<[string, string]> = [
    ['acme.test', 'acme.test'],
    ['ACME.Test', 'acme.test'],
    ['acme.test:3000', 'acme.test'],
    ['acme.test:0', 'acme.test'],
    ['acme.test:65535', 'acme.test'],
    ['acme.test.', 'acme.test'],
    ['Acme.Test.:8080', 'acme.test'],
    ['localhost', 'localhost'],
    ['acme.localhost:3000', 'acme.localhost'],
    ['a-b.c-d.example', 'a-b.c-d.example'],
    ['1acme.test', '1acme.test'],
    ['acme.1test', 'acme.1test'],
    ['a.b.c.d.e', 'a.b.c.d.e'],
    ['XN--BCHER-KVA.example', 'xn--bcher-kva.example'],
    [`${label63}.test`, `${label63}.test`],
    [nameOfLength(253), nameOfLength(253)],
    [`${nameOfLength(253)}.`, nameOfLength(253)],
    [`${nameOfLength(253).toUpperCase()}.:65535`, nameOfLength(253)]
  ]
  for (const [header, host] of cases) t.equal(hostFromHeader(header), host, JSON.stringify(header))
})

t.test('hostFromHeader refuses missing, malformed and look-alike hosts', async (t) => {
  const refused: Array<[string | undefined, string]> = [
    [undefined, 'no header'],
    ['', 'empty'],
    [' ', 'a space'],
    ['.', 'only a dot'],
    [':3000', 'only a port'],
    [' acme.test', 'leading space'],
    ['acme.test ', 'trailing space'],
    ['ac me.test', 'inner space'],
    ['acme.test\0', 'trailing NUL'],
    ['\0acme.test', 'leading NUL'],
    ['acme\0.test', 'inner NUL'],
    ['\tacme.test', 'tab'],
    ['acme.test\r\nX-Injected: 1', 'CR LF'],
    ['acme\x7f.test', 'DEL'],
    ['acme\x1b.test', 'ESC'],
    ['\uff41cme.test', 'fullwidth a (U+FF41)'],
    ['\uff21CME.TEST', 'fullwidth A (U+FF21)'],
    ['\u212acme.test', 'KELVIN SIGN (U+212A), which toLowerCase() turns into k'],
    ['acme.t\u0435st', 'Cyrillic e (U+0435)'],
    ['\u0130cme.test', 'I with dot above (U+0130)'],
    ['acme.test\u00a0', 'no-break space'],
    ['acme.test\u200b', 'zero-width space'],
    ['b\u00fccher.example', 'u with diaeresis (not punycode)'],
    ['-acme.test', 'label starting with a hyphen'],
    ['acme-.test', 'label ending with a hyphen'],
    ['acme.-test', 'last label starting with a hyphen'],
    ['acme.test-', 'last label ending with a hyphen'],
    ['ac_me.test', 'underscore'],
    ['_dmarc.acme.test', 'leading underscore'],
    ['..', 'two dots'],
    ['acme..test', 'empty label'],
    ['.acme.test', 'leading empty label'],
    ['acme.test..', 'two trailing dots'],
    [`${'a'.repeat(64)}.test`, 'label of 64'],
    [`acme.${'a'.repeat(64)}`, 'last label of 64'],
    [nameOfLength(254), 'name of 254'],
    [`${nameOfLength(254)}.`, 'name of 254 with a trailing dot'],
    [`${'a.'.repeat(150)}test`, 'header over 300 characters'],
    ['acme.test:', 'empty port'],
    ['acme.test:abc', 'port not a number'],
    ['acme.test:-1', 'negative port'],
    ['acme.test:+80', 'signed port'],
    ['acme.test:65536', 'port above 65535'],
    ['acme.test:123456', 'port of six digits'],
    ['acme.test:3000:3000', 'two ports'],
    ['acme.test :3000', 'space before the port'],
    ['acme.123', 'last label all digits'],
    ['123', 'a number'],
    ['127.0.0.1', 'IPv4'],
    ['127.0.0.1:3000', 'IPv4 with a port'],
    ['10.0.0.1.', 'IPv4 with a trailing dot'],
    ['[::1]', 'IPv6'],
    ['[::1]:3000', 'IPv6 with a port'],
    ['[2001:db8::1]:443', 'IPv6 with a port'],
    ['::1', 'bare IPv6'],
    ['user@acme.test', 'userinfo'],
    ['acme.test/articles', 'a path'],
    ['acme.test?x=1', 'a query'],
    ['acme.test#x', 'a fragment'],
    ['*.acme.test', 'a wildcard'],
    ['http://acme.test', 'a URL'],
    ['acme.test,globex.test', 'two hosts'],
    ["acme.test'; --", 'SQL']
  ]
  for (const [header, why] of refused) t.equal(hostFromHeader(header), null, `${why}: ${JSON.stringify(header)}`)
})

t.test('hostFromHeader never lets a non-ASCII header through, and what it returns is a normalized DNS name', async (t) => {
  let accepted = 0
  fc.assert(fc.property(
    fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.stringMatching(/^[a-zA-Z0-9.\-_:\u212a\uff41\u0130]{1,30}$/)
    ),
    (header) => {
      const host = hostFromHeader(header)
      if (host === null) return true
      accepted++
      return /^[\x20-\x7e]+$/.test(header) &&
        /^[a-z0-9.-]+$/.test(host) && host.length <= 253 &&
        !host.endsWith('.') && hostFromHeader(host) === host && normalizeDomain(host) === host &&
        header.toLowerCase().startsWith(host)
    }
  ), { numRuns: 2000, seed: 20240607 })
  t.ok(accepted > 0, `the generators reach accepted hosts too (${accepted})`)
})

t.test('normalizeDomain: an operator-given domain, no port', async (t) => {
  const cases: Array<[string, string | null]> = [
    ['acme.test', 'acme.test'],
    ['ACME.Example.COM', 'acme.example.com'],
    ['acme.test.', 'acme.test'],
    ['  Acme.Test.  ', 'acme.test'],
    ['localhost', 'localhost'],
    [nameOfLength(253), nameOfLength(253)],
    ['', null],
    ['   ', null],
    ['.', null],
    ['acme.test:3000', null],
    ['\tacme.test', null],
    ['acme.test\n', null],
    ['acme.test\0', null],
    ['\uff41cme.test', null],
    ['\u212acme.test', null],
    ['ac_me.test', null],
    ['acme..test', null],
    ['acme.test..', null],
    ['-acme.test', null],
    ['acme-.test', null],
    [`${'a'.repeat(64)}.test`, null],
    [nameOfLength(254), null],
    ['127.0.0.1', null],
    ['[::1]', null],
    ['acme test', null]
  ]
  for (const [input, expected] of cases) t.equal(normalizeDomain(input), expected, JSON.stringify(input))
})

t.test('isIpLiteral tells IP addresses from host names', async (t) => {
  const cases: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['127.0.0.1:3000', true],
    ['10.1.2.3:', true],
    ['[::1]', true],
    ['[::1]:3000', true],
    ['[2001:DB8::1]:443', true],
    ['[::ffff:127.0.0.1]:80', true],
    ['acme.test', false],
    ['acme.test:3000', false],
    ['localhost', false],
    ['1.2.3', false],
    ['1.2.3.4.5', false],
    ['1234.1.1.1', false],
    ['[acme.test]', false],
    ['[::1', false],
    ['', false]
  ]
  for (const [header, expected] of cases) t.equal(isIpLiteral(header), expected, JSON.stringify(header))
})

t.test('portOf returns the :port of a Host header, or nothing', async (t) => {
  const cases: Array<[string, string]> = [
    ['acme.test:3000', ':3000'],
    ['acme.test', ''],
    ['acme.test:', ''],
    ['127.0.0.1:80', ':80'],
    ['[::1]:8080', ':8080'],
    ['[::1]', ''],
    ['acme.test:port', ''],
    ['', '']
  ]
  for (const [header, expected] of cases) t.equal(portOf(header), expected, JSON.stringify(header))
})

t.test('hasDuplicateHost finds a second Host line in any case', async (t) => {
  const cases: Array<[string[], boolean]> = [
    [[], false],
    [['Host', 'acme.test'], false],
    [['Host', 'acme.test', 'host', 'globex.test'], true],
    [['HOST', 'acme.test', 'Accept', '*/*', 'hOsT', 'acme.test'], true],
    [['Host', 'acme.test', 'X-Forwarded-Host', 'globex.test'], false],
    [['Host', 'acme.test', 'Hosts', 'globex.test'], false],
    [['Host', 'acme.test', 'Hos', 'globex.test'], false],
    [['Host', 'acme.test', 'hoSt ', 'globex.test'], false],
    [['X-A', 'host', 'X-B', 'host'], false],
    [['Accept', '*/*', 'host', 'a'], false],
    [['Host', 'a', 'Accept', '*/*', 'Host', 'a'], true]
  ]
  for (const [raw, expected] of cases) t.equal(hasDuplicateHost(raw), expected, JSON.stringify(raw))
})

t.test('absoluteTarget splits an absolute-form target into authority and path', async (t) => {
  const cases: Array<[string, { authority: string, path: string } | null]> = [
    ['http://acme.test/articles?page=2', { authority: 'acme.test', path: '/articles?page=2' }],
    ['HTTPS://Acme.Test:3000', { authority: 'Acme.Test:3000', path: '/' }],
    ['http://acme.test?x=1', { authority: 'acme.test', path: '/?x=1' }],
    ['http://acme.test#top', { authority: 'acme.test', path: '/#top' }],
    ['http://[::1]:3000/tenant', { authority: '[::1]:3000', path: '/tenant' }],
    ['http://user@acme.test/', { authority: 'user@acme.test', path: '/' }],
    ['http:///articles', { authority: '', path: '/articles' }],
    ['/articles', null],
    ['/http://acme.test/', null],
    ['*', null],
    ['ftp://acme.test/', null],
    ['acme.test/articles', null],
    ['', null]
  ]
  for (const [url, expected] of cases) t.same(absoluteTarget(url), expected, JSON.stringify(url))
  // The authority is judged as a Host header would be.
  t.equal(hostFromHeader(absoluteTarget('http://user@acme.test/')?.authority), null, 'userinfo in the authority is refused')
  t.equal(hostFromHeader(absoluteTarget('HTTP://ACME.test:80/x')?.authority), 'acme.test', 'the authority normalizes like a Host header')
})
