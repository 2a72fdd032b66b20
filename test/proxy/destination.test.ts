import httpProxy from '@fastify/http-proxy'
import fc from 'fast-check'
import fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import t, { type Test } from 'tap'
import { type Prefixes, plainDestination, shortcutPlainTargets } from '../../src/proxy/destination.js'
import { upstreamReadsPathAsWeDo } from '../../src/proxy/path-check.js'

t.test('plain targets: the prefix replaced on the raw path, the query left out', async (t) => {
  const api = { prefix: '/api', rewritePrefix: '' }
  t.equal(plainDestination('/api', api), '/')
  t.equal(plainDestination('/api?x=1', api), '/')
  t.equal(plainDestination('/api/', api), '/')
  t.equal(plainDestination('/api/a%2Fb?q=/x', api), '/a%2Fb')
  t.equal(plainDestination('/api/items', { prefix: '/api', rewritePrefix: '/v1' }), '/v1/items')
  t.equal(plainDestination('/api', { prefix: '/api', rewritePrefix: '/v1' }), '/v1')
  t.equal(plainDestination('/items', { prefix: '', rewritePrefix: '' }), '/items')
  t.equal(plainDestination('/%61pi/items', api), undefined, 'an escaped prefix is left to http-proxy')
  t.equal(plainDestination('/api//evil.example/x', api), undefined, 'a rest that starts // is left to it')
  t.equal(plainDestination('//evil.example/x', { prefix: '', rewritePrefix: '' }), undefined)
})

/**
 * Every target the path check lets through and `plainDestination` takes
 * reaches the same destination @fastify/http-proxy computes for it, for
 * prefixes with and without a rewrite.
 */
t.test('plainDestination agrees with @fastify/http-proxy on generated targets', async (t) => {
  const seen: { dest: string | undefined } = { dest: undefined }
  const app = fastify()
  const routes = [
    { prefix: '/api', rewritePrefix: '' },
    { prefix: '/api/pub', rewritePrefix: '/v1' },
    { prefix: '/same', rewritePrefix: '/same' },
  ]
  for (const prefixes of routes)
    await app.register(httpProxy, {
      upstream: 'http://upstream.invalid',
      ...prefixes,
      handler(_request, reply, dest) {
        seen.dest = dest
        reply.send('')
      },
    })
  t.teardown(() => app.close())
  const char = fc.constantFrom(...'ab/%2F.;~-_:@!$&()*+,=?'.split(''), '%2e', '%20', '%E2%82%AC')
  const lead = fc.constantFrom('', '/', '/', '?', '//', 'x/')
  const rest = fc
    .tuple(lead, fc.array(char, { maxLength: 12 }))
    .map(([first, chars]) => first + chars.join(''))
  let compared = 0
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...routes), rest, async (prefixes, tail) => {
      const url = prefixes.prefix + tail
      if (!upstreamReadsPathAsWeDo(url)) return true
      const ours = plainDestination(url, prefixes)
      if (ours === undefined) return true
      seen.dest = undefined
      const res = await app.inject(url)
      if (res.statusCode === 404) return true // the router matched another route or none
      compared++
      // http-proxy passes '' for a bare prefix with a query; every reader of `dest` takes '' as '/'.
      return res.statusCode === 200 && (seen.dest || '/') === ours
    }),
    { numRuns: 500 },
  )
  t.ok(compared > 150, `${compared} generated targets reached the same destination both ways`)
})

/**
 * An app with one http-proxy route (`prefixes`, optionally inside a scope
 * of `scopePrefix`) and `/other`, each recording which handler answered.
 */
async function recordingApp(t: Test, prefixes: Prefixes, scopePrefix?: string) {
  const via: string[] = []
  const app = fastify()
  const answer = (what: string) => (_request: FastifyRequest, reply: FastifyReply, dest?: string) => {
    via.push(dest === undefined ? what : `${what} ${dest}`)
    reply.send('')
  }
  await app.register(
    async (scope) => {
      const config = {}
      shortcutPlainTargets(scope, prefixes, answer('shortcut'), (route) => route.config === config)
      await scope.register(httpProxy, {
        upstream: 'http://upstream.invalid',
        ...prefixes,
        config,
        handler: answer('http-proxy'),
      })
      scope.get('/other', answer('other'))
    },
    scopePrefix === undefined ? {} : { prefix: scopePrefix },
  )
  t.teardown(() => app.close())
  return { app, via }
}

t.test("a route's plain targets skip http-proxy's handler; the rest keep it", async (t) => {
  const { app, via } = await recordingApp(t, { prefix: '/api', rewritePrefix: '/v1' })
  for (const url of ['/api/items?x=1', '/api', '/%61pi/items', '/api//x', '/other'])
    t.equal((await app.inject(url)).statusCode, 200, url)
  t.same(via, ['shortcut /v1/items', 'shortcut /v1', 'http-proxy /v1/items', 'http-proxy /v1//x', 'other'])
})

t.test("under an enclosing scope's prefix, http-proxy reads every target", async (t) => {
  const { app, via } = await recordingApp(t, { prefix: '/api', rewritePrefix: '' }, '/api')
  t.equal((await app.inject('/api/api/items')).statusCode, 200)
  t.same(via, ['http-proxy /items'])
})

t.test('a prefix with parameters keeps http-proxy reading every target', async (t) => {
  const { app, via } = await recordingApp(t, { prefix: '/t/:tenant', rewritePrefix: '' })
  t.equal((await app.inject('/t/a/items')).statusCode, 200)
  // Even a target that spells the prefix's parameter as written.
  t.equal((await app.inject('/t/:tenant/items')).statusCode, 200)
  t.same(via, ['http-proxy /items', 'http-proxy /items'])
})
