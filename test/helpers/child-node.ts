/**
 * How a test starts a Node child that runs this checkout's TypeScript.
 *
 * tap merges V8 coverage per file by byte offset before mapping it back to
 * the source. A file that the test process and a child compiled with two
 * different compilers has two different outputs, and merging them reports
 * nonsense: lines that ran as never run, and the other way round. So under
 * tap a child loads TypeScript exactly as its parent does, and its coverage
 * counts; outside tap it uses tsx.
 */
// `npm test` and `npm run test:unit` run on Node's type stripping with
// typescript-resolve.ts (package.json): a child gets the same hook, named by
// its absolute URL so that a child started in another directory finds it.
// tap also passes its own loader's `--import`, which does nothing when type
// stripping is on; it is left out, so that a child given an environment
// without tap's variables does not start compiling with ts-node.
const RESOLVE_HOOK = new URL('./typescript-resolve.ts', import.meta.url)
const stripping = process.execArgv.some(
  (arg) => arg.endsWith('/typescript-resolve.ts') && arg.startsWith('--import='),
)
const tapLoader = stripping
  ? [`--import=${RESOLVE_HOOK.href}`]
  : process.execArgv.filter((arg) => arg.includes('@tapjs/typescript') || arg === '--import=tsx')

/** Node flags that make a child run `.ts` files. */
export const typescriptFlags: readonly string[] = tapLoader.length > 0 ? tapLoader : ['--import', 'tsx']

/**
 * The environment for a child whose own children use tsx whatever we say
 * (`npm run bench` forks its peers with it): its coverage, which could
 * only corrupt the merge, is not recorded.
 */
export function withoutCoverage(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, _TAPJS_PROCESSINFO_COVERAGE_: '0' }
}
