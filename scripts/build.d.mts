/** Why dist/ cannot be run as it is (missing, older than a source, an output without source), or null when current. */
export function staleReason (): string | null
/** Compiles (incrementally) and stamps dist/. */
export function build (): void
/** Builds only when dist/ is stale; returns whether it built. */
export function buildIfStale (): boolean
