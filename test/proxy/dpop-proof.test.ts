import type { FastifyReply, FastifyRequest } from 'fastify'
import t from 'tap'
import { generateDpopKey } from '../../src/dpop/keys.js'
import { DpopNonces } from '../../src/dpop/nonces.js'
import { UpstreamProofs } from '../../src/dpop/upstream.js'
import { sendWithProof } from '../../src/proxy/dpop-proof.js'
import type { DpopKey } from '../../src/types.js'

const upstream = 'http://orders.internal:8080'

/** The request and reply fields sendWithProof uses, and what it did with them. */
function exchange(key: DpopKey) {
  const request = { method: 'GET', upstreamDpopKey: key, upstreamToken: 'token', upstreamProof: null }
  const answered: unknown[] = []
  const reply = { send: (err: unknown) => answered.push(err) }
  let sent = 0
  return {
    go(proofs: UpstreamProofs) {
      sendWithProof(
        proofs,
        upstream,
        request as unknown as FastifyRequest,
        reply as unknown as FastifyReply,
        '/v1/orders',
        () => sent++,
      )
    },
    request,
    answered,
    sent: () => sent,
  }
}

t.test('an EC key: the proof is on the request and it is sent in the same tick', async (t) => {
  const proofs = new UpstreamProofs(new DpopNonces())
  const one = exchange(await generateDpopKey('ES256'))
  one.go(proofs)
  t.equal(one.sent(), 1, 'sent before any promise could settle')
  t.type(one.request.upstreamProof, 'string')
})

t.test('a key that cannot sign: the error goes to the reply, nothing goes upstream', async (t) => {
  const proofs = new UpstreamProofs(new DpopNonces())
  const broken: DpopKey = { alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA', d: 'AA' } }
  const one = exchange(broken)
  t.doesNotThrow(() => one.go(proofs), 'no throw escapes into the route handler')
  t.equal(one.answered.length, 1, 'answered with the error')
  t.equal(one.sent(), 0, 'not forwarded')
  t.equal(one.request.upstreamProof, null)
})
