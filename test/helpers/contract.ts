// No fast-check here: a test that needs only the contract's codes should not pay for building generators.

/** Every error code of the contract (the README's error table) with the one status it is sent with. */
export const CONTRACT_CODES: Readonly<Record<string, number>> = {
  HOST_INVALID: 400,
  TENANT_NOT_FOUND: 404,
  TENANT_SUSPENDED: 403,
  TENANT_UNAVAILABLE: 503,
  TENANT_BUSY: 503,
  CATALOG_UNAVAILABLE: 503,
  CATALOG_BUSY: 503,
  VALIDATION_FAILED: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  SLUG_TAKEN: 409,
  DOMAIN_TAKEN: 409,
  TENANT_LOCKED: 409,
  TENANT_STATE_CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  SHUTTING_DOWN: 503,
  REQUEST_TIMEOUT: 408,
  HEADERS_TOO_LARGE: 431,
  EXPECTATION_FAILED: 417,
  INTERNAL_ERROR: 500
}
