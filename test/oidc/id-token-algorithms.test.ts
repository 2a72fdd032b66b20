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

t.test(
  'fapi2 at an IdP that lists none of the profile algorithms, none among what it lists: still never none',
  async (t) => {
    // Sign-in is refused there (fapi2Incompatibility), but a session's
    // refresh is not: an empty list handed oauth4webapi the advertised one,
    // none included, and a refresh answer's unsigned ID token was taken.
    const algs = idTokenAlgorithms({ profile: 'fapi2' }, as(['none', 'RS256']))
    t.ok(algs.length > 0, "oauth4webapi's own rule, the advertised list, is not left to apply")
    t.notOk(algs.includes('none'), 'none is not accepted')
    t.notOk(algs.includes('RS256'), 'nor an algorithm the profile does not allow')
  },
)
