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
