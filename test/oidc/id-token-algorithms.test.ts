import t from 'tap'
import { idTokenAlgorithms } from '../../src/oidc/id-token-algorithms.js'

const as = (list?: string[]) => ({
  issuer: 'https://idp.example',
  ...(list ? { id_token_signing_alg_values_supported: list } : {}),
})

t.test('without none listed, oauth4webapi keeps its own rule', async (t) => {
  t.same(idTokenAlgorithms({ profile: undefined }, as(['RS256', 'ES256'])), [])
  t.same(idTokenAlgorithms({ profile: undefined }, as()), [])
})

t.test('none listed: every listed algorithm but none', async (t) => {
  t.same(idTokenAlgorithms({ profile: undefined }, as(['none', 'RS256', 'ES256'])), ['RS256', 'ES256'])
})

t.test('none alone: RS256, OIDC Core §3.1.3.7', async (t) => {
  t.same(idTokenAlgorithms({ profile: undefined }, as(['none'])), ['RS256'])
})

t.test('fapi2: the profile algorithms the IdP lists, never none', async (t) => {
  t.same(idTokenAlgorithms({ profile: 'fapi2' }, as(['none', 'RS256', 'PS256', 'ES256'])), ['PS256', 'ES256'])
})
