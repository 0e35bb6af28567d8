// A server's connection budget: its capacity changed while connections are open and openers wait
// (a server's budget set anew), and its split among the live instances. Pure modules, no database.
import t from './helpers/tap.js'
import { fairShare } from '../src/catalog/instance-registry.js'
import { ConnectionBudget } from '../src/tenancy/connection-budget.js'

const settled = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

t.test('a raised capacity lets waiting openers in at once, in order', async (t) => {
  const budget = new ConnectionBudget(1, 10)
  await budget.take(1000)
  const granted: number[] = []
  const waits = [1, 2, 3].map(async (n) => { await budget.take(1000); granted.push(n) })
  await settled()
  t.same(budget.stats(), { capacity: 1, open: 1, waiting: 3, rejected: 0 })
  budget.setCapacity(3)
  await settled()
  t.same(granted, [1, 2], 'two new slots, to the first two waiters')
  t.same(budget.stats(), { capacity: 3, open: 3, waiting: 1, rejected: 0 })
  budget.give()
  await Promise.all(waits)
  t.same(granted, [1, 2, 3], 'the last one takes the next slot given back')
})

t.test('a lowered capacity takes no open connection away, and hands on no slot until open is under it', async (t) => {
  const budget = new ConnectionBudget(3, 10)
  for (let i = 0; i < 3; i++) await budget.take(1000)
  budget.setCapacity(1)
  let granted = false
  const wait = budget.take(1000).then(() => { granted = true })
  await settled()
  t.same(budget.stats(), { capacity: 1, open: 3, waiting: 1, rejected: 0 })
  budget.give()
  await settled()
  t.notOk(granted, 'a slot given back above the capacity is taken out')
  t.equal(budget.stats().open, 2)
  budget.give()
  await settled()
  t.notOk(granted)
  t.equal(budget.stats().open, 1)
  budget.give()
  await wait
  t.ok(granted, 'once under the capacity, the slot goes to the waiter')
  t.same(budget.stats(), { capacity: 1, open: 1, waiting: 0, rejected: 0 })
})

t.test("a server's budget split among live instances adds up to the budget exactly, the remainder to the first", async (t) => {
  for (const [budget, count] of [[4, 2], [4, 3], [10, 3], [2, 5], [100, 7], [1, 1]] as const) {
    const shares = Array.from({ length: count }, (_, index) => fairShare(budget, count, index))
    t.equal(shares.reduce((sum, share) => sum + share, 0), budget, `${budget} over ${count}: ${shares.join(', ')}`)
    t.ok(Math.max(...shares) - Math.min(...shares) <= 1, 'no share more than one above another')
    t.same(shares, [...shares].sort((a, b) => b - a), 'the larger shares first')
  }
})
