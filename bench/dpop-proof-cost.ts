/**
 * CPU per DPoP proof, in process: the upstream proof as the proxy makes it
 * (`UpstreamProofs`: jose, the key imported once, `ath` by node:crypto),
 * against the floors every proof pays: one bare ES256 signature with
 * node:crypto (synchronous) and with WebCrypto (a thread-pool job, as jose
 * and oauth4webapi sign); and oauth4webapi's own resource-request proof,
 * which the proxy made before and the IdP calls still use.
 *
 *   npx tsx bench/dpop-proof-cost.ts [count]
 */
import { createPrivateKey, sign, webcrypto } from 'node:crypto'
import * as oauth from 'oauth4webapi'
import { dpopKeyPair, generateDpopKey } from '../src/dpop/keys.js'
import { DpopNonces } from '../src/dpop/nonces.js'
import { DpopProofs } from '../src/dpop/proofs.js'
import { UpstreamProofs } from '../src/dpop/upstream.js'

const count = Number(process.argv[2] ?? 5_000)
const key = await generateDpopKey('ES256')
const dpop = new DpopProofs(new DpopNonces())
const proofs = new UpstreamProofs(new DpopNonces())
const url = new URL('http://127.0.0.1:8080/api/items/42')
const token = 'x'.repeat(43)

async function measure(name: string, once: () => Promise<unknown> | unknown) {
  for (let i = 0; i < 500; i++) await once()
  const start = process.cpuUsage()
  const wall = performance.now()
  // 32 at a time, as a proxy under load signs them.
  for (let i = 0; i < count; i += 32) await Promise.all(Array.from({ length: 32 }, once))
  const cpu = process.cpuUsage(start)
  const perCall = (cpu.user + cpu.system) / count
  console.log(
    `${name.padEnd(36)} ${perCall.toFixed(0)} µs CPU, ${(((performance.now() - wall) * 1000) / count).toFixed(0)} µs wall per call`,
  )
  return perCall
}

const pem = createPrivateKey({ key: { ...key.jwk }, format: 'jwk' })
const { privateKey } = await dpopKeyPair(key)
const input = Buffer.from('x'.repeat(300))
const handle = await dpop.handle(key)
const viaOauth4webapi = async () => {
  let proof: string | undefined
  await oauth.protectedResourceRequest(token, 'GET', url, undefined, undefined, {
    DPoP: handle,
    [oauth.allowInsecureRequests]: true,
    [oauth.customFetch]: async (_url, init) => {
      proof = (init.headers as Record<string, string>).dpop
      return new Response(null, { status: 204 })
    },
  })
  return proof
}
await measure('node:crypto ES256 sign (floor)', () =>
  sign('sha256', input, { key: pem, dsaEncoding: 'ieee-p1363' }),
)
await measure('WebCrypto ES256 sign (floor)', () =>
  webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, input),
)
await measure('upstream proof (UpstreamProofs)', () => proofs.proof(key, 'GET', url, token))
await measure('oauth4webapi resource-request proof', viaOauth4webapi)
