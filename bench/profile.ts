import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

export interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface HotFunction {
  readonly name: string
  /** Share of all samples spent in the function itself, percent. */
  readonly selfPercent: number
}

/** The functions a `--cpu-prof` profile spent most of its own busy time in (idle excluded). */
export function hottest(file: string, top = 20): HotFunction[] {
  return [...selfShares(readProfile(file))]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, share]) => ({ name, selfPercent: Math.round(share * 1000) / 10 }))
}

export function readProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
}

/**
 * Each function's own share of the busy samples (idle and the profiler's
 * own inspector work left out), by `name file:line`.
 */
export function selfShares(profile: CpuProfile): Map<string, number> {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0
    const frame = byNode.get(id)!.callFrame
    if (frame.functionName === '(idle)' || frame.url === 'node:inspector') return
    const name = siteName(frame)
    self.set(name, (self.get(name) ?? 0) + delta)
    total += delta
  })
  for (const [name, time] of self) self.set(name, total === 0 ? 0 : time / total)
  return self
}

/** One peer's profiles, each with the CPU per request its load measured. */
export interface ProfiledRounds {
  readonly profiles: readonly CpuProfile[]
  /** CPU µs per request of the same round, one per profile. */
  readonly cpuMicrosPerRequest: readonly number[]
}

/**
 * Each function's own µs per request, averaged over the rounds: its share
 * of a round's busy samples times that round's CPU per request. Shares of
 * busy time scale alike when a VM slows down; this turns them back into
 * time so two peers can be subtracted.
 */
export function selfMicros({ profiles, cpuMicrosPerRequest }: ProfiledRounds): Map<string, number> {
  if (profiles.length !== cpuMicrosPerRequest.length || profiles.length === 0) {
    throw new Error(
      `one CPU figure per profile: ${profiles.length} profiles, ${cpuMicrosPerRequest.length} figures`,
    )
  }
  const micros = new Map<string, number>()
  profiles.forEach((profile, i) => {
    for (const [name, share] of selfShares(profile)) {
      micros.set(name, (micros.get(name) ?? 0) + (share * cpuMicrosPerRequest[i]!) / profiles.length)
    }
  })
  return micros
}

export interface FunctionDifference {
  readonly name: string
  /** Per request in `a` minus in `b` (µs of CPU, or bytes allocated). */
  readonly delta: number
  readonly a: number
  readonly b: number
}

/** Function by function, what `a` spends per request beyond `b`, largest first. */
export function difference(a: Map<string, number>, b: Map<string, number>): FunctionDifference[] {
  const names = new Set([...a.keys(), ...b.keys()])
  return [...names]
    .map((name) => {
      const inA = a.get(name) ?? 0
      const inB = b.get(name) ?? 0
      return { name, delta: inA - inB, a: inA, b: inB }
    })
    .sort((x, y) => y.delta - x.delta)
}

/** A profile frame as `function file:line`, the file shortened to its package or `src/` path. */
export function siteName(frame: { functionName: string; url: string; lineNumber: number }): string {
  const where = frame.url ? `${shorten(frame.url)}:${frame.lineNumber + 1}` : ''
  return `${frame.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`
}

function shorten(url: string): string {
  const i = url.lastIndexOf('node_modules/')
  if (i !== -1) return url.slice(i + 'node_modules/'.length)
  const src = url.indexOf('/src/')
  return src !== -1 ? url.slice(src + 1) : url.replace(/^file:\/\//, '')
}
