import type { FastifyReply, FastifyRequest } from 'fastify'
import type { UpstreamProofs } from '../dpop/upstream.js'

/**
 * Makes the request's DPoP proof for the upstream (into
 * `request.upstreamProof`), then sends it with `send`. Requests without a
 * key or a token are sent at once. `htu` is the upstream URL as it is
 * sent, without the query (RFC 9449 §4.2), whose path is `dest`.
 */
export function sendWithProof(
  proofs: UpstreamProofs | undefined,
  upstream: string,
  request: FastifyRequest,
  reply: FastifyReply,
  dest: string,
  send: () => void,
): void {
  const key = request.upstreamDpopKey
  const token = request.upstreamToken
  if (!proofs || key === null || token === null) {
    send()
    return
  }
  let proof: string | Promise<string>
  try {
    proof = proofs.proof(key, request.method, new URL(upstream + (dest || '/')), token)
  } catch (err) {
    // A key fast-jwt or node:crypto refuses fails here, not in a promise.
    reply.send(err)
    return
  }
  // EC and Ed25519 proofs are signed in this tick: sent without a promise hop.
  if (typeof proof === 'string') {
    request.upstreamProof = proof
    send()
    return
  }
  proof.then(
    (made) => {
      // RSA signs on the thread pool: a browser that left meanwhile has
      // nobody to answer, and its request, a POST maybe, is not sent for
      // nobody (the exchange's close listener is added only at dispatch).
      if (reply.raw.destroyed) return
      request.upstreamProof = made
      send()
    },
    (err: unknown) => reply.send(err),
  )
}
