import t from 'tap'
import { oldestBeyond } from '../../src/http/sessions-per-user.js'

const NOW = 1_000

/**
 * Which of a user's sessions a sign-in past session.maxPerUser ends: every
 * instance must pick the same, or two sign-ins at once would each end one
 * the other kept and leave fewer than the bound.
 */
t.test(
  'the oldest beyond the bound, by creation time and then by id, whatever the listing order',
  async (t) => {
    const sessions = [
      { id: 'c', createdAt: 30 },
      { id: 'b', createdAt: 10 },
      { id: 'z', createdAt: 20 },
      { id: 'a', createdAt: 10 },
      // A Redis record written before records kept their creation time.
      { id: 'old', createdAt: 0 },
    ]
    t.same(oldestBeyond(sessions, 5, NOW), [], 'at the bound: none')
    t.same(
      oldestBeyond(sessions, 2, NOW).map((s) => s.id),
      ['old', 'a', 'b'],
      'three beyond two: the one of unknown age, then the same millisecond by id',
    )
    t.same(
      oldestBeyond([...sessions].reverse(), 2, NOW).map((s) => s.id),
      ['old', 'a', 'b'],
      'listed in another order, the same ones',
    )
    t.same(
      oldestBeyond(sessions, 1, NOW).map((s) => s.id),
      ['old', 'a', 'b', 'z'],
    )
  },
)

t.test(
  'a session whose refresh token has expired goes before older ones that can still refresh',
  async (t) => {
    const sessions = [
      { id: 'laptop', createdAt: 10, refreshTokenExpiresAt: NOW + 1 },
      { id: 'phone', createdAt: 20, refreshTokenExpiresAt: NOW },
      { id: 'tablet', createdAt: 30 },
      { id: 'watch', createdAt: 40, refreshTokenExpiresAt: NOW - 1 },
    ]
    t.same(
      oldestBeyond(sessions, 2, NOW).map((s) => s.id),
      ['phone', 'watch'],
      'the two that cannot refresh (expired at or before now), oldest first',
    )
    t.same(
      oldestBeyond(sessions, 1, NOW).map((s) => s.id),
      ['phone', 'watch', 'laptop'],
      'then the oldest of those that can, its expiry unknown or still ahead',
    )
    t.same(
      oldestBeyond(sessions, 2, NOW - 1).map((s) => s.id),
      ['watch', 'laptop'],
      'a moment earlier the phone could still refresh',
    )
  },
)
