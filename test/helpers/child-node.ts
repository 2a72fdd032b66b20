/**
 * How a test starts a Node child that runs this checkout's TypeScript.
 *
 * tap merges V8 coverage per file by byte offset before mapping it back to
 * the source. A file that the test process compiled with tap's TypeScript
 * loader and a child compiled with tsx (esbuild) has two different outputs,
 * and merging them reports nonsense: lines that ran as never run, and the
 * other way round. So under tap a child loads TypeScript exactly as its
 * parent does, and its coverage counts; outside tap it uses tsx.
 */
// `npm run test:unit` has tap load TypeScript with tsx (`--type-strip-only` keeps
// its own loader out): a child then takes tsx from the same flags.
const tapLoader = process.execArgv.filter(
  (arg) => arg.includes('@tapjs/typescript') || arg === '--import=tsx',
)

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
