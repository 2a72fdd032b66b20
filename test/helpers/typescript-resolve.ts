/**
 * How the tests run this checkout's TypeScript: Node's own type stripping,
 * with this hook for the one thing it does not do. Our sources import each
 * other as `./x.js` (NodeNext, what the build emits); Node looks for that
 * file, and this hook hands it `./x.ts` when that is the file there, as
 * tsc resolves it. Node then only blanks out the types, so every byte
 * offset V8 reports for coverage is the source's own: no source map, and no
 * second compiler whose output could disagree with the first.
 *
 * `npm test` and `npm run test:unit` load it with `--import` (package.json);
 * test/helpers/child-node.ts hands it to TypeScript children. Compiling
 * with ts-node instead cost a few seconds of CPU per test process.
 */
import { existsSync } from 'node:fs'
import { enableCompileCache, registerHooks } from 'node:module'
import { fileURLToPath } from 'node:url'

// Every test file is a process of its own that loads tap, fastify, undici,
// oidc-provider and our sources again: V8's code cache on disk spares about
// a third of that CPU (1.7 s to 1.2 s a process here). Not under coverage:
// code compiled from the cache reports other branch counts (1,155 branches
// of one file instead of 1,323), and the coverage floor must stay exact.
if (process.env._TAPJS_PROCESSINFO_COVERAGE_ !== '1') {
  enableCompileCache(fileURLToPath(new URL('../../node_modules/.cache/gatehouse-tests', import.meta.url)))
}

registerHooks({
  resolve(specifier, context, nextResolve) {
    const parent = context.parentURL
    if (
      specifier.startsWith('.') &&
      specifier.endsWith('.js') &&
      parent?.startsWith('file:') &&
      !parent.includes('/node_modules/')
    ) {
      const source = new URL(`${specifier.slice(0, -3)}.ts`, parent)
      if (existsSync(source)) return nextResolve(source.href, context)
    }
    return nextResolve(specifier, context)
  },
})
