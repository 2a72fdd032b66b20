/**
 * CPU per DPoP proof, in process: the upstream proof as the proxy makes it
 * (oauth4webapi through `UpstreamProofs`), against one bare ES256 signature
 * with node:crypto, the floor every proof pays.
 *
 *   npx tsx bench/dpop-proof-cost.ts [count]
 */
import { createPrivateKey, sign } from 'node:crypto'
import { generateDpopKey } from '../src/dpop/keys.js'
import { DpopNonces } from '../src/dpop/nonces.js'
import { DpopProofs } from '../src/dpop/proofs.js'
import { UpstreamProofs } from '../src/dpop/upstream.js'

const count = Number(process.argv[2] ?? 5_000)
const key = await generateDpopKey('ES256')
const proofs = new UpstreamProofs(new DpopProofs(new DpopNonces()))
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
    `${name.padEnd(28)} ${perCall.toFixed(0)} µs CPU, ${(((performance.now() - wall) * 1000) / count).toFixed(0)} µs wall per call`,
  )
  return perCall
}

const pem = createPrivateKey({ key: { ...key.jwk }, format: 'jwk' })
await measure('node:crypto ES256 sign', () =>
  sign('sha256', Buffer.from('x'.repeat(300)), { key: pem, dsaEncoding: 'ieee-p1363' }),
)
await measure('upstream proof (oauth4webapi)', () => proofs.proof(key, 'GET', url, token))
