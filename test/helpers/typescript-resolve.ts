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
import { registerHooks } from 'node:module'

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
