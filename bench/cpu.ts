import { readFileSync } from 'node:fs'

/** CPU seconds a process has spent in its own code (user) and in the kernel on its behalf (system). */
export interface CpuTimes {
  readonly user: number
  readonly system: number
}

/** A process's user and system CPU seconds so far, from /proc (Linux only). */
export function cpuTimes(pid: number): CpuTimes {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name may hold spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 }
}

/**
 * CPU seconds (user + system) a process has used, from /proc (Linux only).
 * Per request, it is steadier than throughput on a shared machine: what
 * other processes take slows a peer down without adding to its CPU time.
 */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuTimes(pid)
  return user + system
}
