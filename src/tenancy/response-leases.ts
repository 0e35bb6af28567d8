import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PoolLease } from './pool-lease.js'

const leaseKey = Symbol('silo.lease')
/** The lease a response holds; null once it was let go of early (`letGo`: the response is watched already). */
type LeasedResponse = ServerResponse & { [leaseKey]?: PoolLease | null | undefined }
const queuedKey = Symbol('silo.queuedResponses')
type WatchedSocket = Socket & { [queuedKey]?: Set<LeasedResponse> }

/**
 * Holds a request's pool lease until its response is closed, which Node signals in every case:
 * after the answer was written (kept-alive connections included), or when the connection closed
 * first. `finish` (Fastify's onResponse) never comes for an answer written to a closed
 * connection, and Fastify's onRequestAbort only runs while the body is unread, so a client that
 * leaves after sending its body would keep its lease, and a retired pool would never be destroyed.
 * One listener function for every response: no closure on the hot path.
 */
export function holdUntilClosed (request: FastifyRequest, reply: FastifyReply, lease: PoolLease): void {
  const res = reply.raw as LeasedResponse
  const watched = res[leaseKey] === null
  res[leaseKey] = lease
  const socket = request.raw.socket as WatchedSocket | null
  // The client left while the host was being resolved (or while the request waited for another lease): the close has been and gone.
  if (res.destroyed || socket?.destroyed === true) {
    responseClosed.call(res)
    return
  }
  // Its earlier lease was let go of: the listeners below are in place.
  if (watched) return
  res.on('close', responseClosed)
  // A pipelined request whose response waits behind an earlier one on the connection: Node
  // gives it the connection only when that one is done, and if the connection closes first,
  // this response is never told.
  if (res.socket === null && socket !== null) watchQueued(socket, res)
}

/**
 * Gives back the lease a response holds before its request is done, its route not run (it waits
 * for another: see the tenancy plugin); `holdUntilClosed` gives it the next one.
 */
export function letGo (reply: FastifyReply): void {
  const res = reply.raw as LeasedResponse
  const lease = res[leaseKey]
  res[leaseKey] = null
  lease?.release()
}

/** `close` listener of a leased response (`this`). */
function responseClosed (this: LeasedResponse): void {
  const lease = this[leaseKey]
  if (lease == null) return
  this[leaseKey] = undefined
  // Answered, or still waiting for its turn (it leaves the queue, its route never runs).
  if (this.writableEnded || !lease.admitted) lease.release()
  else releaseWhenAnswered(this, lease)
}

/**
 * The client left before its answer while the route still runs: its queries may still need the
 * pool (a retired pool is destroyed when its last lease goes, and a later query would fail), so
 * the lease goes back when the route answers (the answer goes nowhere) or the response is
 * destroyed (an error past the error handler). A response whose connection is gone emits no
 * event for either, so this one response's two methods are wrapped; only early leavers pay for it.
 */
function releaseWhenAnswered (res: ServerResponse, lease: PoolLease): void {
  const { end, destroy } = res
  const done = (): void => {
    res.end = end
    res.destroy = destroy
    lease.release()
  }
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    done()
    return Reflect.apply(end, this, args) as ServerResponse
  } as ServerResponse['end']
  res.destroy = function (this: ServerResponse, ...args: unknown[]) {
    done()
    return Reflect.apply(destroy, this, args) as ServerResponse
  } as ServerResponse['destroy']
}

/** Tells the queued responses of `socket` when it closes; each leaves the set when it closes itself. */
function watchQueued (socket: WatchedSocket, res: LeasedResponse): void {
  let queued = socket[queuedKey]
  if (queued === undefined) {
    const responses = queued = socket[queuedKey] = new Set()
    socket.once('close', () => {
      for (const response of responses) responseClosed.call(response)
      responses.clear()
    })
  }
  const responses = queued
  responses.add(res)
  res.once('close', () => { responses.delete(res) })
}
