/**
 * RFC 9449 §8.1: a nonce is NQCHAR; Gatehouse takes one only as such and
 * up to 1 KiB (src/dpop/nonces.ts), since it rides in every later proof
 * to its origin. oauth4webapi's proof handle keeps its own copy of each
 * answer's `DPoP-Nonce`, unchecked: the IdP's proofs must carry only the
 * nonce Gatehouse took, never that copy.
 */
import t from 'tap'
import { signedInWithDpop, watchProofs } from '../helpers/dpop.js'
import { apiCall } from '../helpers/login.js'

for (const [name, nonce] of [
  ['two DPoP-Nonce fields, joined', 'n-1, n-2'],
  ['past 1 KiB', 'n'.repeat(4096)],
] as const) {
  t.test(`a nonce the IdP sent ${name} is not put in its next proof`, async (t) => {
    const { stack, base, jar } = await signedInWithDpop(t)
    stack.idp.answer('token', {
      grantType: 'refresh_token',
      status: 400,
      headers: { 'dpop-nonce': nonce },
      body: { error: 'invalid_dpop_proof', error_description: 'refused at the edge' },
    })
    stack.clock.advance(61_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503, 'the refused proof is a 503')
    stack.idp.answer('token')
    const proofs = watchProofs(stack.idp)
    stack.clock.advance(61_000)
    const api = await apiCall(jar, `${base}/api/orders`)
    await proofs.settled()
    t.equal(proofs.length, 1, 'the next refresh reached the IdP')
    t.equal(proofs[0]!.nonce, undefined, 'its proof carries no nonce the gateway did not take')
    t.equal(api.status, 200, 'and is served')
  })
}
