import type { FastifyBaseLogger } from 'fastify'
import t from 'tap'
import { isGatehouseError } from '../../src/errors.js'
import { answerUpstreamFailure, type UpstreamErrorKind } from '../../src/proxy/upstream-errors.js'
import { RepeatedLines } from '../../src/repeated-lines.js'

/** What one failed dispatch answered, logged and counted. */
function answer(error: Error & { code?: string }) {
  const sent: unknown[] = []
  const warned: unknown[] = []
  const counted: [string, UpstreamErrorKind][] = []
  const log = { warn: (obj: unknown) => warned.push(obj) } as unknown as FastifyBaseLogger
  answerUpstreamFailure(
    { log, send: (payload) => sent.push(payload) },
    error,
    '/api',
    new RepeatedLines(),
    (route, kind) => counted.push([route, kind]),
  )
  const [payload] = sent
  return { sent, code: isGatehouseError(payload) ? payload.code : undefined, warned, counted }
}

const failure = (code: string) => Object.assign(new Error(code), { code })

t.test("undici's timeouts are 504 upstream_timeout, counted as timeouts", async (t) => {
  for (const code of ['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']) {
    const { sent, code: answered, counted, warned } = answer(failure(code))
    t.equal(sent.length, 1, `${code}: one answer`)
    t.equal(answered, 'GATEHOUSE_ERR_UPSTREAM_TIMEOUT', code)
    t.same(counted, [['/api', 'timeout']])
    t.same(warned, [{ route: '/api', upstreamError: code }])
  }
})

t.test('any other failure is 502 upstream_unreachable, counted as unreachable', async (t) => {
  for (const error of [failure('ECONNREFUSED'), failure('UND_ERR_SOCKET'), new Error('no code')]) {
    const { code, counted } = answer(error)
    t.equal(code, 'GATEHOUSE_ERR_UPSTREAM_UNREACHABLE', error.message)
    t.same(counted, [['/api', 'unreachable']])
  }
})

t.test('an answer that is not valid HTTP is 502 upstream_invalid_response, counted as invalid', async (t) => {
  const parser = Object.assign(new Error('Response does not match the HTTP/1.1 protocol'), {
    name: 'HTTPParserError',
    code: 'HPE_UNEXPECTED_CONTENT_LENGTH',
  })
  const uncoded = Object.assign(new Error('Response does not match the HTTP/1.1 protocol'), {
    name: 'HTTPParserError',
  })
  for (const error of [
    parser,
    uncoded,
    failure('UND_ERR_HEADERS_OVERFLOW'),
    failure('UND_ERR_RES_CONTENT_LENGTH_MISMATCH'),
  ] as (Error & {
    code?: string
  })[]) {
    const { code, counted } = answer(error)
    t.equal(code, 'GATEHOUSE_ERR_UPSTREAM_INVALID_RESPONSE', `${error.name} ${error.code ?? ''}`)
    t.same(counted, [['/api', 'invalid']])
  }
})

t.test("a body over the route's limit is the client's 413, not an upstream failure", async (t) => {
  const { code, counted, warned } = answer(failure('GATEHOUSE_ERR_PAYLOAD_TOO_LARGE'))
  t.equal(code, 'GATEHOUSE_ERR_PAYLOAD_TOO_LARGE')
  t.same(counted, [], 'not counted against the upstream')
  t.same(warned, [], 'nor logged as its failure')
})
