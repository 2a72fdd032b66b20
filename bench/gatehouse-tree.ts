/** Which Gatehouse the bench's peers run: the sources through tsx, or the compiled build. */
export type GatehouseTree = 'src' | 'dist'

/**
 * `BENCH_GATEHOUSE` when set; otherwise the compiled build for a measuring
 * run, as `gatehouse start` and the image run it, and the sources for the
 * smoke run in `npm test`, which builds nothing. tsx wraps every closure it
 * makes to keep its name, so the sources cost more per request than the
 * build users run (docs/performance.md, seventh pass).
 */
export function gatehouseTree(smoke: boolean, env: NodeJS.ProcessEnv = process.env): GatehouseTree {
  const chosen = env.BENCH_GATEHOUSE ?? (smoke ? 'src' : 'dist')
  if (chosen !== 'src' && chosen !== 'dist')
    throw new Error(`BENCH_GATEHOUSE must be src or dist, not ${JSON.stringify(chosen)}`)
  return chosen
}
