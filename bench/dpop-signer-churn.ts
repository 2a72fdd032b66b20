/**
 * What the bound on upstream DPoP signers (`MAX_KEYS`, src/dpop/key-cache.ts)
 * costs a process that serves more active DPoP sessions than it holds: each
 * request of `sessions` sessions in turn (a round-robin balancer sends a
 * replica every session's requests) asks `UpstreamProofs` for a proof, and
 * the run counts the signers made (a key not held before its proof) and the
 * CPU per request, in the first round (every key new) and in the later ones.
 * Within the bound a later round makes none; one past it, the least recently
 * used key is always the next one asked for, and every request makes one.
 * Also the memory a held signer costs, from the process's RSS.
 *
 *   node --expose-gc --import tsx bench/dpop-signer-churn.ts [sessions] [rounds]
 */

import { MAX_KEYS } from '../src/dpop/key-cache.js'
import { generateDpopKey, publicKeyId } from '../src/dpop/keys.js'
import { DpopNonces } from '../src/dpop/nonces.js'
import { UpstreamProofs } from '../src/dpop/upstream.js'

const sessions = Number(process.argv[2] ?? MAX_KEYS + 1)
const rounds = Number(process.argv[3] ?? 3)
const url = new URL('http://127.0.0.1:8080/api/items/42')
const token = 'x'.repeat(43)
const keys = await Promise.all(Array.from({ length: sessions }, () => generateDpopKey('ES256')))
const proofs = new UpstreamProofs(new DpopNonces())
const gc = (globalThis as { gc?: () => void }).gc
gc?.()
const rssBefore = process.memoryUsage().rss

for (let round = 1; round <= rounds; round++) {
  let made = 0
  const start = process.cpuUsage()
  for (const key of keys) {
    if (!proofs.holds(publicKeyId(key))) made++
    proofs.proof(key, 'GET', url, token)
  }
  const cpu = process.cpuUsage(start)
  console.log(
    `${sessions} sessions (bound ${MAX_KEYS}), round ${round}: ${made} signers made for ${sessions} requests, ${((cpu.user + cpu.system) / sessions).toFixed(0)} µs CPU per request`,
  )
  if (round === 1 && gc) {
    gc()
    const held = Math.min(sessions, MAX_KEYS)
    console.log(
      `  RSS ${((process.memoryUsage().rss - rssBefore) / held / 1024).toFixed(1)} KiB per held signer`,
    )
  }
}
