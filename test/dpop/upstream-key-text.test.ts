import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { typescriptFlags, withoutCoverage } from '../helpers/child-node.js'

const script = fileURLToPath(new URL('../helpers/heap-key-text.ts', import.meta.url))

/**
 * Issue 22: fast-jwt remembers the algorithm of the last 1,000 private
 * keys it was given, by their text, in its own module, where neither a
 * session's end nor the signer's reaches. An EC key goes to it encrypted
 * under a passphrase nobody keeps, so the text it remembers opens to no
 * one, and a heap dump after logout shows no key. The heap is a child's,
 * small enough to snapshot quickly.
 */
t.test('once its signers are let go, no text of an EC key is left in the heap', async (t) => {
  const out = execFileSync(process.execPath, [...typescriptFlags, script], {
    env: withoutCoverage(),
    encoding: 'utf8',
    timeout: 60_000,
  })
  const { control, held } = JSON.parse(out) as { control: boolean; held: Record<string, boolean> }
  t.ok(control, 'the scan finds PEM text the heap still holds')
  t.same(held, { ES256: false, ES384: false, ES512: false }, "no signed key's PEM text is in the heap")
})
