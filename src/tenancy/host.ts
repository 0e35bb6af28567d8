/**
 * Host names as Silo stores and compares them: lowercase, no trailing dot, no port, and a valid
 * DNS name (RFC 1123 labels, at most 253 characters). Anything else is not a tenant host.
 */
/**
 * Dot-separated RFC 1123 labels (1-63 of a-z, 0-9 and -, no hyphen at either end); the last one
 * not all digits, which would make an IPv4 literal look like a name. One expression, not a split
 * and a test per label: this runs on every request.
 */
const DNS_NAME = /^(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)*(?!-)(?![0-9]+$)[a-z0-9-]{1,63}(?<!-)$/
const MAX_HOST_HEADER = 300
/**
 * Anything outside printable ASCII is refused before lowercasing: toLowerCase() folds some
 * non-ASCII letters into ASCII ones (KELVIN SIGN U+212A becomes `k`), which would let a look-alike
 * reach another tenant's host. Internationalized names are given in their punycode (xn--) form.
 */
const NOT_PRINTABLE_ASCII = /[^\x20-\x7e]/

function isDnsName (host: string): boolean {
  return host.length > 0 && host.length <= 253 && DNS_NAME.test(host)
}

/** A domain given by an operator (CLI, admin API): normalized, or null when it is not a host name. */
export function normalizeDomain (input: string): string | null {
  if (NOT_PRINTABLE_ASCII.test(input)) return null
  let host = input.trim().toLowerCase()
  if (host.endsWith('.')) host = host.slice(0, -1)
  return isDnsName(host) ? host : null
}

/**
 * The host of a request's Host header: lowercased, port and trailing dot removed. Null when the
 * header is missing or malformed (bad characters, bad port, IP literal, not a DNS name).
 */
export function hostFromHeader (header: string | undefined): string | null {
  if (header === undefined || header.length === 0 || header.length > MAX_HOST_HEADER || NOT_PRINTABLE_ASCII.test(header)) return null
  let host = header.toLowerCase()
  const colon = host.lastIndexOf(':')
  if (colon !== -1) {
    const port = host.slice(colon + 1)
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535) return null
    host = host.slice(0, colon)
  }
  if (host.endsWith('.')) host = host.slice(0, -1)
  return isDnsName(host) ? host : null
}

/** Whether a header name is `host` in any case, compared by character code: no lowercased copy per header. */
function isHostName (name: string): boolean {
  // `| 0x20` folds ASCII upper case onto lower case; only 'H' and 'h' fold onto 'h', and so on.
  return name.length === 4 &&
    (name.charCodeAt(0) | 0x20) === 0x68 && (name.charCodeAt(1) | 0x20) === 0x6f &&
    (name.charCodeAt(2) | 0x20) === 0x73 && (name.charCodeAt(3) | 0x20) === 0x74
}

/**
 * Whether a request carries more than one Host line (RFC 9112 §3.2 requires a 400). Node keeps
 * only the first in `headers.host`; `rawHeaders` holds every line as [name, value, ...]. This
 * runs on every request: one pass, nothing allocated.
 */
export function hasDuplicateHost (rawHeaders: readonly string[]): boolean {
  let seen = false
  for (let index = 0; index < rawHeaders.length; index += 2) {
    if (!isHostName(rawHeaders[index] ?? '')) continue
    if (seen) return true
    seen = true
  }
  return false
}

/** An absolute-form request target split into the authority it names and the origin-form path to route. */
export interface AbsoluteTarget {
  authority: string
  path: string
}

const ABSOLUTE_FORM = /^https?:\/\//i

/**
 * `http://host[:port]/path?query` (RFC 9112 §3.2.2), or null for any other target (origin form
 * `/path`, `*`, or a scheme Silo does not serve, which routing answers with 404). The authority is
 * returned as it is: it is judged like a Host header, by hostFromHeader.
 */
export function absoluteTarget (url: string): AbsoluteTarget | null {
  if (url.charCodeAt(0) === 0x2f || !ABSOLUTE_FORM.test(url)) return null
  const start = url.indexOf('//') + 2
  let end = start
  while (end < url.length) {
    const code = url.charCodeAt(end)
    if (code === 0x2f || code === 0x3f || code === 0x23) break // '/', '?', '#'
    end++
  }
  const rest = url.slice(end)
  return { authority: url.slice(start, end), path: rest.charCodeAt(0) === 0x2f ? rest : `/${rest}` }
}

const IPV4_LITERAL = /^[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?::[0-9]*)?$/
const IPV6_LITERAL = /^\[[0-9a-f:.]+\](?::[0-9]*)?$/i

/** Whether a Host header names an IP address (`127.0.0.1:3000`, `[::1]`): Silo routes by host name only. */
export function isIpLiteral (header: string): boolean {
  return IPV4_LITERAL.test(header) || IPV6_LITERAL.test(header)
}

/** The `:port` part of a Host header, or '' when it has none. */
export function portOf (header: string): string {
  const match = /:([0-9]{1,5})$/.exec(header)
  return match === null ? '' : `:${match[1] ?? ''}`
}
