/*
 * The `reqId` of every log line a request writes. Fastify's own generator
 * counts from req-1 in each instance, and a config reload builds a new
 * instance (reload.ts): ids started again after each reload, and log lines
 * of two requests shared one. One counter for the process keeps them apart
 * for its whole life.
 */
let issued = 0

/** The next request id of this process: `req-` and a counter in base 36, as Fastify writes it. */
export function nextRequestId(): string {
  // Fastify wraps its counter at 2^31 to stay a V8 small integer, and so
  // repeats ids after 2^31 requests; a double counts exactly to 2^53,
  // which no process serves, at the cost of a heap number past 2^31.
  issued += 1
  return `req-${issued.toString(36)}`
}
