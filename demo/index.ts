/**
 * `npm run demo` starts here: the Node version check first, then the demo
 * itself, imported only on a supported Node (see src/cli/supported-node.ts).
 */
import { nodeRefusal } from '../src/cli/supported-node.js'

const refusal = nodeRefusal()
if (refusal !== undefined) {
  process.stderr.write(`${refusal}\n`)
  process.exitCode = 1
} else {
  await import('./run.js')
}
