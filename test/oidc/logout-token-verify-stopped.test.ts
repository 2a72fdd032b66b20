/**
 * A held token's try passes the shutdown's stop to the verifier
 * (logout-token.ts `verify`). jose makes one JWKS fetch for every call
 * waiting on the keys, so the fetch is aborted only once every call
 * waiting on it is stopped: a delivery waiting on the same fetch, which
 * has no stop, keeps it, while the stopped call returns at once.
 */
import type { ServerResponse } from 'node:http'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import t from 'tap'
import { CLIENT, EVENT, ISSUER, NOW, verifierServing } from '../helpers/logout-token-verifier.js'

/** A JWKS server that holds every fetch open, telling when one comes and when the client lets it go. */
function hangingJwks() {
  const held: ServerResponse[] = []
  /** Closed before they were answered: the client gave up. */
  const letGo: ServerResponse[] = []
  let came = () => {}
  const fetched = new Promise<void>((resolve) => {
    came = resolve
  })
  return {
    held,
    letGo,
    fetched,
    answer: (_req: unknown, res: ServerResponse) => {
      held.push(res)
      res.once('close', () => {
        if (!res.writableFinished) letGo.push(res)
      })
      came()
    },
  }
}

const key = await generateKeyPair('ES256')
const JWKS = JSON.stringify({
  keys: [{ ...(await exportJWK(key.publicKey)), kid: 'k', alg: 'ES256', use: 'sig' }],
})

/** A logout token signed with `key`, whose JWKS the verifier has yet to fetch. */
function token() {
  return new SignJWT({ iss: ISSUER, aud: CLIENT, iat: NOW, jti: 'j', sub: 'u', events: EVENT })
    .setProtectedHeader({ alg: 'ES256', kid: 'k' })
    .sign(key.privateKey)
}

/** Resolves once `cond` holds, polled every 10 ms for up to 5 s. */
async function until(cond: () => boolean): Promise<boolean> {
  for (let waited = 0; waited < 5_000; waited += 10) {
    if (cond()) return true
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return cond()
}

t.test('a stopped call aborts the JWKS fetch it alone waits on', async (t) => {
  const jwks = hangingJwks()
  const v = await verifierServing(t, jwks.answer)
  const stop = new AbortController()
  const verifying = v.verify(await token(), stop.signal)
  await jwks.fetched
  stop.abort()
  await t.rejects(verifying, { code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE' }, 'the call ends as unavailable')
  t.ok(await until(() => jwks.letGo.length === 1), 'and the fetch is let go at the JWKS server')
})

t.test('a stopped call leaves a fetch a delivery also waits on', async (t) => {
  const jwks = hangingJwks()
  const v = await verifierServing(t, jwks.answer)
  const stop = new AbortController()
  const held = v.verify(await token(), stop.signal)
  await jwks.fetched
  const delivery = v.verify(await token())
  stop.abort()
  await t.rejects(held, { code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE' }, 'the stopped call ends at once')
  // The JWKS answers now: the delivery is verified with it, its fetch never aborted.
  jwks.held[0]!.writeHead(200, { 'content-type': 'application/json' }).end(JWKS)
  t.match(await delivery, { sub: 'u' }, 'the delivery is verified')
  t.equal(jwks.held.length, 1, 'both waited on one fetch')
})
