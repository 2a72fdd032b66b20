import { readFileSync } from 'node:fs'

/**
 * CPU seconds (user + system) a process has used, from /proc (Linux only).
 * Per request, it is steadier than throughput on a shared machine: what
 * other processes take slows a peer down without adding to its CPU time.
 */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name may hold spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}
