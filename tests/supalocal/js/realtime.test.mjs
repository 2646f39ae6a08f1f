// supalocal's /realtime/v1 through supabase-js, as a dashboard uses it: broadcast for operator notes, presence
// for "who is watching this tool", postgres_changes for one machine's commands (docs/LOCAL_STACK.md §4, §8.5).
// Run by tests/supalocal/test_supabase_js.py on a stack at its seed state; each test has its own topic.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, test } from 'node:test'

import { close, dashboard, dataOf, MACHINE_ID, service, subscribed, until } from './clients.mjs'

const QUIET_MS = 300 // how long "nothing more arrives" is watched for
const ACK_TIMEOUT_MS = 5000 // a send waiting for an ack the server never sends resolves 'timed out' after this
const clients = []
afterEach(async () => Promise.all(clients.splice(0).map(close)))

async function user() {
  const client = await dashboard()
  clients.push(client)
  return client
}

test('broadcast reaches the other members; the sender only with self; ack confirms the send', async () => {
  const topic = `notes-${randomUUID()}`
  const got = { alice: [], bob: [] }
  const alice = (await user()).channel(topic) // supabase-js' defaults: self false, ack false
  alice.on('broadcast', { event: 'note' }, (message) => got.alice.push(message))
  const bob = (await user()).channel(topic, { config: { broadcast: { self: true, ack: true } } })
  bob.on('broadcast', { event: 'note' }, (message) => got.bob.push(message))
  await subscribed(alice)
  await subscribed(bob)

  assert.equal(await alice.send({ type: 'broadcast', event: 'note', payload: { text: 'chamber cleaned' } }), 'ok')
  await until(() => got.bob.length === 1, "bob's copy of alice's note")
  assert.deepEqual(got.bob[0], { type: 'broadcast', event: 'note', payload: { text: 'chamber cleaned' } })

  const sent = await bob.send({ type: 'broadcast', event: 'note', payload: { text: 'thanks' } }, { timeout: ACK_TIMEOUT_MS })
  assert.equal(sent, 'ok', 'with ack the server confirms the send')
  await until(() => got.alice.length === 1 && got.bob.length === 2, "bob's note at alice and, with self, at bob")
  assert.deepEqual(got.alice[0].payload, { text: 'thanks' })
  assert.deepEqual(got.bob[1].payload, { text: 'thanks' })
  await sleep(QUIET_MS)
  assert.equal(got.alice.length, 1, 'without self the sender does not get its own message')
  assert.equal(got.bob.length, 2)
})

test('broadcast stays on its topic', async () => {
  const got = []
  const here = (await user()).channel(`notes-${randomUUID()}`)
  here.on('broadcast', { event: '*' }, (message) => got.push(message))
  const elsewhere = (await user()).channel(`notes-${randomUUID()}`, { config: { broadcast: { ack: true } } })
  await subscribed(here)
  await subscribed(elsewhere)
  assert.equal(await elsewhere.send({ type: 'broadcast', event: 'note', payload: {} }, { timeout: ACK_TIMEOUT_MS }), 'ok')
  await sleep(QUIET_MS)
  assert.deepEqual(got, [])
})

function watch(channel, events) {
  return channel
    .on('presence', { event: 'sync' }, () => events.push(['sync', Object.keys(channel.presenceState()).sort()]))
    .on('presence', { event: 'join' }, ({ key, newPresences }) => events.push(['join', key, newPresences.map((p) => p.user)]))
    .on('presence', { event: 'leave' }, ({ key, leftPresences }) => events.push(['leave', key, leftPresences.map((p) => p.user)]))
}

test('presence: track, then presence_state at join, sync, join and leave events', async () => {
  const topic = `tool-${randomUUID()}`
  const aliceEvents = []
  const alice = watch((await user()).channel(topic, { config: { presence: { key: 'alice' } } }), aliceEvents)
  await subscribed(alice)
  assert.equal(await alice.track({ user: 'alice', view: 'tool-1' }), 'ok')
  await until(() => 'alice' in alice.presenceState(), "alice's own presence")

  const bobEvents = []
  const bobClient = await user()
  const bob = watch(bobClient.channel(topic, { config: { presence: { key: 'bob' } } }), bobEvents)
  await subscribed(bob)
  await until(() => bobEvents.some(([kind]) => kind === 'sync'), "bob's first sync (from presence_state)")
  assert.deepEqual(bobEvents, [['join', 'alice', ['alice']], ['sync', ['alice']]])
  const [meta] = bob.presenceState().alice
  assert.equal(meta.user, 'alice')
  assert.equal(meta.view, 'tool-1')
  assert.equal(typeof meta.presence_ref, 'string')

  assert.equal(await bob.track({ user: 'bob', view: 'tool-1' }), 'ok')
  await until(() => 'bob' in alice.presenceState() && 'bob' in bob.presenceState(), "bob's presence at both")
  assert.deepEqual(Object.keys(bob.presenceState()).sort(), ['alice', 'bob'])

  assert.equal(await alice.untrack(), 'ok')
  await until(() => !('alice' in bob.presenceState()), "alice's untrack at bob")
  assert.deepEqual(bobEvents.slice(-4), [['join', 'bob', ['bob']], ['sync', ['alice', 'bob']], ['leave', 'alice', ['alice']], ['sync', ['bob']]])

  await bobClient.removeChannel(bob)
  await until(() => !('bob' in alice.presenceState()), "bob's leave at alice")
  assert.deepEqual(aliceEvents, [
    ['sync', []], // presence_state at join: nobody yet
    ['join', 'alice', ['alice']],
    ['sync', ['alice']],
    ['join', 'bob', ['bob']],
    ['sync', ['alice', 'bob']],
    ['leave', 'alice', ['alice']],
    ['sync', ['bob']],
    ['leave', 'bob', ['bob']],
    ['sync', []],
  ])
})

test("postgres_changes with filter machine_id=eq.<id> gets that machine's commands only", async () => {
  const other = randomUUID()
  const admin = service()
  clients.push(admin)
  dataOf(await admin.from('machines').insert({ id: other, name: 'second reactor' }))

  const mine = []
  const all = []
  const systems = []
  const channel = (await user())
    .channel(`commands-${randomUUID()}`)
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'machine_commands', filter: `machine_id=eq.${MACHINE_ID}` }, (change) => mine.push(change))
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'machine_commands' }, (change) => all.push(change))
    .on('system', {}, (message) => systems.push(message))
  await subscribed(channel)
  await until(() => systems.some((m) => m.extension === 'postgres_changes' && m.status === 'ok'), '"Subscribed to PostgreSQL"')

  const db = await user()
  dataOf(await db.from('machine_commands').insert({ machine_id: other, type: 'stop_recipe', payload: { reason: 'other' } }))
  dataOf(await db.from('machine_commands').insert({ machine_id: MACHINE_ID, type: 'stop_recipe', payload: { reason: 'mine' } }))
  await until(() => all.length === 2 && mine.length === 1, 'the unfiltered binding to get both inserts')
  await sleep(QUIET_MS)
  assert.equal(mine.length, 1)
  const [change] = mine
  assert.equal(change.eventType, 'INSERT')
  assert.equal(change.table, 'machine_commands')
  assert.equal(change.new.machine_id, MACHINE_ID)
  assert.deepEqual(change.new.payload, { reason: 'mine' })
  assert.equal(change.new.status, 'pending')
  assert.deepEqual(all.map((c) => c.new.payload.reason), ['other', 'mine'])
})
