/**
 * The admin token, for this tab only: sessionStorage (gone when the tab closes, never sent
 * anywhere but the Authorization header of the console's own API calls), never a URL, a cookie
 * or a log.
 */
const KEY = 'silo.adminToken'

export const readToken = (): string | null => sessionStorage.getItem(KEY)
export const saveToken = (token: string): void => { sessionStorage.setItem(KEY, token) }
export const clearToken = (): void => { sessionStorage.removeItem(KEY) }
