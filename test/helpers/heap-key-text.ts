/**
 * Run as a child of test/dpop/upstream-key-text.test.ts, in a heap of its
 * own, small enough to snapshot in a moment: makes an upstream signer for
 * an EC key of each size, lets go of every signer, then says on stdout, as
 * JSON, whether the heap still holds each key's PKCS#8 PEM text (found by
 * hash: this script never keeps the text itself). A control key whose text
 * is kept on purpose shows that the scan finds what is there.
 */
import { createHash, createPrivateKey } from 'node:crypto'
import { getHeapSnapshot } from 'node:v8'
import type { DpopAlgorithm } from '../../src/config/types.js'
import { generateDpopKey } from '../../src/dpop/keys.js'
import { DpopNonces } from '../../src/dpop/nonces.js'
import { UpstreamProofs } from '../../src/dpop/upstream.js'
import type { DpopKey } from '../../src/types.js'

const pemOf = (key: DpopKey) =>
  String(createPrivateKey({ key: { ...key.jwk }, format: 'jwk' }).export({ format: 'pem', type: 'pkcs8' }))
const hash = (text: string) => createHash('sha256').update(text).digest('hex')

/** The hashes of every string the heap holds that reads as PEM text, found escaped in the snapshot's JSON. */
async function heapPemHashes(): Promise<Set<string>> {
  const chunks: Buffer[] = []
  // A snapshot collects garbage first: what it shows is what is still referenced.
  for await (const chunk of getHeapSnapshot()) chunks.push(chunk as Buffer)
  const hashes = new Set<string>()
  for (const match of Buffer.concat(chunks)
    .toString('utf8')
    .matchAll(/"(-----BEGIN(?:[^"\\]|\\.)*)"/g)) {
    hashes.add(hash(JSON.parse(`"${match[1]}"`) as string))
  }
  return hashes
}

const url = new URL('https://orders.example/v1/orders')
const signed: { alg: DpopAlgorithm; key: DpopKey }[] = []
for (const alg of ['ES256', 'ES384', 'ES512'] as const) {
  const key = await generateDpopKey(alg)
  const upstream = new UpstreamProofs(new DpopNonces())
  if (typeof upstream.proof(key, 'GET', url, 'token') !== 'string')
    throw new Error(`${alg} did not sign at once`)
  signed.push({ alg, key })
}
const control = await generateDpopKey('ES256')
const kept = pemOf(control)
const held = await heapPemHashes()
process.stdout.write(
  JSON.stringify({
    control: held.has(hash(kept)),
    held: Object.fromEntries(signed.map(({ alg, key }) => [alg, held.has(hash(pemOf(key)))])),
  }),
)
