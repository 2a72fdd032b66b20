import fastify, { type FastifyBaseLogger } from 'fastify'
import t from 'tap'
import type { GatehouseConfig } from '../../src/config/types.js'
import { loggerOptions, requestLogger } from '../../src/server/logger.js'

/** A real pino logger (Fastify's), writing JSON lines to an array, that counts its children. */
function pino(level: string) {
  const lines: Record<string, unknown>[] = []
  const app = fastify({
    logger: {
      ...loggerOptions({ logging: { level }, tracing: { enabled: false } } as GatehouseConfig),
      stream: { write: (line: string) => void lines.push(JSON.parse(line)) },
    },
  })
  const log = app.log as FastifyBaseLogger
  const makeChild = log.child
  const made = { children: 0 }
  // Children inherit this property, so `this` must stay whoever is called.
  log.child = function (this: FastifyBaseLogger, ...args: Parameters<FastifyBaseLogger['child']>) {
    made.children++
    return makeChild.apply(this, args)
  }
  return { log, lines, made }
}

t.test('a request that logs nothing makes no child logger', async (t) => {
  const { log, lines, made } = pino('info')
  const logger = requestLogger(log, { reqId: 'req-1' }, {})
  logger.trace('off')
  logger.debug({ x: 1 }, 'off')
  t.equal(made.children, 0, 'levels that are off cost nothing')
  t.equal(logger.level, 'info')
  t.same(lines, [])

  logger.info({ route: '/api' }, 'first')
  logger.warn('second')
  t.equal(made.children, 1, 'the first line makes the child, once')
  t.match(lines, [
    { level: 30, reqId: 'req-1', route: '/api', msg: 'first' },
    { level: 40, reqId: 'req-1', msg: 'second' },
  ])
  logger.child({ step: 'x' }).info('third')
  t.match(lines[2], { reqId: 'req-1', step: 'x', msg: 'third' }, 'a grandchild keeps the request id')
})

t.test('redaction still applies to what a request logs', async (t) => {
  const { log, lines } = pino('info')
  requestLogger(log, { reqId: 'req-2' }, {}).error({ body: { access_token: 'SECRET' } }, 'failed')
  t.match(lines, [{ reqId: 'req-2', body: { access_token: '[redacted]' } }])
})

t.test('route-level log options get a real child at once', async (t) => {
  const { log, lines, made } = pino('info')
  const logger = requestLogger(log, { reqId: 'req-3' }, { level: 'debug' })
  t.equal(made.children, 1)
  logger.debug('on here')
  t.match(lines, [{ level: 20, reqId: 'req-3', msg: 'on here' }])
})

t.test(
  'a logged request keeps its path and drops the query, where a callback carries its code',
  async (t) => {
    const { log, lines } = pino('info')
    requestLogger(log, { reqId: 'req-3' }, {}).warn(
      { req: { method: 'GET', url: '/auth/callback?code=SECRET-CODE&state=SECRET-STATE' } },
      'callback failed',
    )
    requestLogger(log, { reqId: 'req-4' }, {}).warn({ req: { url: '/healthz' } }, 'no method')
    t.match(lines, [
      { reqId: 'req-3', req: { method: 'GET', path: '/auth/callback' } },
      { reqId: 'req-4', req: { method: '', path: '/healthz' } },
    ])
    t.notMatch(JSON.stringify(lines), /SECRET/)
  },
)

t.test('an error is logged by type, code and cause, never by its payload', async (t) => {
  const { log, lines } = pino('info')
  const cause = Object.assign(new Error('ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' })
  const err = Object.assign(new Error('store down', { cause }), { code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE' })
  const numeric = Object.assign(new Error('odd'), { code: 42, cause: 'a string cause is not an object' })
  const logger = requestLogger(log, { reqId: 'req-5' }, {})
  logger.error({ err }, 'first')
  logger.error({ err: numeric }, 'second')
  t.match(lines[0], {
    err: {
      type: 'Error',
      errorCode: 'GATEHOUSE_ERR_STORE_UNAVAILABLE',
      cause: { type: 'Error', errorCode: 'ECONNREFUSED' },
    },
  })
  t.notMatch(JSON.stringify(lines[0]), /6379/, "the cause's message stays out")
  t.match(lines[1], { err: { errorCode: 42 } })
  t.notOk(
    (lines[1]!.err as Record<string, unknown>).cause,
    'a cause that is not an error object is not logged',
  )
})

t.test('a summary logged in place of an error comes out as just what it holds', async (t) => {
  const { log, lines } = pino('info')
  log.error({ err: { name: 'OTLPExporterError', code: '400' } }, 'export failed')
  t.same(lines[0]?.err, { type: 'OTLPExporterError', errorCode: '400' }, 'no empty message or stack')
})

t.test('the request logger is a whole logger: fatal, level changes and bindings', async (t) => {
  const { log, lines } = pino('info')
  const logger = requestLogger(log, { reqId: 'req-6' }, {}) as FastifyBaseLogger & {
    bindings(): Record<string, unknown>
  }
  t.match(logger.bindings(), { reqId: 'req-6' })
  logger.level = 'debug'
  t.equal(logger.level, 'debug')
  logger.debug('now on')
  logger.fatal('down')
  t.match(lines, [
    { level: 20, reqId: 'req-6', msg: 'now on' },
    { level: 60, reqId: 'req-6', msg: 'down' },
  ])
  t.equal(log.level, 'info', "the change is the request's own")
})
