import t from 'tap'
import { oldestBeyond } from '../../src/http/sessions-per-user.js'

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
    t.same(oldestBeyond(sessions, 5), [], 'at the bound: none')
    t.same(
      oldestBeyond(sessions, 2).map((s) => s.id),
      ['old', 'a', 'b'],
      'three beyond two: the one of unknown age, then the same millisecond by id',
    )
    t.same(
      oldestBeyond([...sessions].reverse(), 2).map((s) => s.id),
      ['old', 'a', 'b'],
      'listed in another order, the same ones',
    )
    t.same(
      oldestBeyond(sessions, 1).map((s) => s.id),
      ['old', 'a', 'b', 'z'],
    )
  },
)
