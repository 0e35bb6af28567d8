export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/**
 * Polls `check` every `intervalMs` until it holds, or gives up after `timeoutMs` and returns its
 * last answer (asked once more at the deadline).
 */
export async function eventually (check: () => Promise<boolean> | boolean, timeoutMs = 30000, intervalMs = 50): Promise<boolean> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (await check()) return true
    await sleep(intervalMs)
  }
  return await check()
}
