// ConnectionBudget's capacity changed while connections are open and openers wait (a server's
// budget set anew): a pure module, no database.
import t from 'tap'
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
