import net from 'node:net'

/** One HTTP/1.1 request as text, with a JSON body when given. */
export function requestText (method: string, path: string, host: string, body?: unknown): string {
  const data = body === undefined ? '' : JSON.stringify(body)
  const headers = body === undefined ? '' : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(data)}\r\n`
  return `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${headers}\r\n${data}`
}

/** A raw client socket to 127.0.0.1:`port`; later errors (the server resetting it) are ignored. */
export async function rawSocket (port: number): Promise<net.Socket> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => { resolve(socket) })
    socket.once('error', reject)
    socket.on('error', () => {})
  })
}

/** Resolves with the first chunk the server sends on `socket`. */
export async function firstAnswer (socket: net.Socket): Promise<string> {
  return await new Promise((resolve) => { socket.once('data', (chunk: Buffer) => { resolve(chunk.toString()) }) })
}

/**
 * A client that sends its whole request, body included, and leaves without waiting for the
 * answer: right after the request is handed to the kernel, or `afterMs` later (the route is then
 * likely mid-query). Resolves once the socket is closed.
 */
export async function abandonRequest (port: number, text: string, afterMs = 0): Promise<void> {
  const socket = await rawSocket(port)
  const closed = new Promise<void>((resolve) => { socket.once('close', () => { resolve() }) })
  await new Promise<void>((resolve) => { socket.write(text, () => { resolve() }) })
  if (afterMs > 0) await new Promise((resolve) => setTimeout(resolve, afterMs))
  socket.destroy()
  await closed
}

/** A raw request's answer: the status, the header block and the body, as the bytes arrived. */
export interface RawResponse {
  status: number | null
  headers: string
  body: string
}

/** Sends `request` as bytes on a connection of its own (what app.inject cannot express) and reads until the server closes it. */
export async function rawRequest (port: number, request: Buffer, timeoutMs = 5000): Promise<RawResponse> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error('raw request got no complete response in time'))
    }, timeoutMs)
    socket.on('data', (chunk: Buffer) => { chunks.push(chunk) })
    // The server may reset the connection right after a parser-level 400: keep what arrived.
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      const text = Buffer.concat(chunks).toString('latin1')
      const split = text.indexOf('\r\n\r\n')
      const status = /^HTTP\/1\.[01] (\d{3}) /.exec(text)?.[1]
      resolve({
        status: status === undefined ? null : Number(status),
        headers: split === -1 ? text : text.slice(0, split),
        body: split === -1 ? '' : text.slice(split + 4)
      })
    })
    socket.write(request)
  })
}
