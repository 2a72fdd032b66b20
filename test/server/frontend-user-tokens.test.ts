import t from 'tap'
import { FrontendUserTokens } from '../../src/server/frontend-user-tokens.js'
import type { UserTokens } from '../../src/tokens/user-tokens.js'

/** Tokens that are only their list, to tell which list made them. */
function lists(): { tokens: FrontendUserTokens; made: string[] } {
  const made: string[] = []
  const tokens = new FrontendUserTokens((names) => {
    made.push(names.join(','))
    return { names } as unknown as UserTokens
  })
  return { tokens, made }
}

t.test('two apps share the tokens of a list both use; the last to close drops them', async (t) => {
  const { tokens, made } = lists()
  const retired = tokens.hold()
  const running = tokens.hold()
  const first = retired.of(['a'])
  t.equal(retired.of(['a']), first, 'two frontends of one app with the same list share its tokens')
  t.equal(running.of(['a']), first, 'so do two apps')
  running.of(['b', 'a'])
  t.same(made, ['a', 'b,a'], 'one set a list, its order kept')
  t.equal(tokens.size, 2)
  retired.release()
  retired.release()
  t.equal(tokens.size, 2, 'a list another app uses stays, however often an app lets go')
  running.release()
  t.equal(tokens.size, 0, 'none is held once every app has closed')
})

t.test('an app that has let go holds nothing it asks for after', async (t) => {
  const { tokens, made } = lists()
  const running = tokens.hold()
  const kept = running.of(['a'])
  const closed = tokens.hold()
  closed.release()
  t.equal(closed.of(['a']), kept, 'a list held is shared still')
  closed.of(['b'])
  t.same(made, ['a', 'b'])
  t.equal(tokens.size, 1, 'but a list no open app holds is not kept')
})
