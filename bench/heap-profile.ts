import { siteName } from './profile.js'

/** A V8 sampling heap profile (`HeapProfiler.stopSampling`, a `.heapprofile`). */
export interface HeapProfile {
  readonly head: HeapNode
}

interface HeapNode {
  readonly callFrame: { functionName: string; url: string; lineNumber: number }
  /** Bytes the sampler estimates this frame allocated itself. */
  readonly selfSize: number
  readonly children: readonly HeapNode[]
}

/**
 * Bytes allocated per request by each allocating function (`function
 * file:line`, as in CPU profiles), over a profile that covered `requests`
 * requests; `total` is their sum. A function reached by several paths is
 * summed over them.
 */
export function allocatedPerRequest(
  profile: HeapProfile,
  requests: number,
): { readonly total: number; readonly bySite: Map<string, number> } {
  const bySite = new Map<string, number>()
  let total = 0
  const pending: HeapNode[] = [profile.head]
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (node.selfSize > 0) {
      const site = siteName(node.callFrame)
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize / requests)
      total += node.selfSize / requests
    }
    pending.push(...node.children)
  }
  return { total, bySite }
}
