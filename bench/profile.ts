import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface CpuProfile {
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
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0
    const frame = byNode.get(id)!.callFrame
    if (frame.functionName === '(idle)') return
    const where = frame.url ? `${shorten(frame.url)}:${frame.lineNumber + 1}` : ''
    const name = `${frame.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`
    self.set(name, (self.get(name) ?? 0) + delta)
    total += delta
  })
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, time]) => ({ name, selfPercent: Math.round((time / total) * 1000) / 10 }))
}

function shorten(url: string): string {
  const i = url.lastIndexOf('node_modules/')
  if (i !== -1) return url.slice(i + 'node_modules/'.length)
  const src = url.indexOf('/src/')
  return src !== -1 ? url.slice(src + 1) : url.replace(/^file:\/\//, '')
}
