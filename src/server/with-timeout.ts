/** `promise`, or a rejection after `ms`, or `undefined` once `stop` aborts (the shutdown). */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  message: string,
  stop: AbortSignal,
): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  let stopped: (() => void) | undefined
  // Its listener taken off after: a promise that never settles, raced, held one reaction per reload.
  const bounds = new Promise<undefined>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
    stopped = () => resolve(undefined)
    if (stop.aborted) resolve(undefined)
    else stop.addEventListener('abort', stopped, { once: true })
  })
  return Promise.race([promise, bounds]).finally(() => {
    clearTimeout(timer)
    stop.removeEventListener('abort', stopped!)
  })
}
