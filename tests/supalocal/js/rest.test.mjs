// supalocal's /rest/v1 through supabase-js, as a dashboard's queries use it (docs/LOCAL_STACK.md §8.3, §8.4).
// Run by tests/supalocal/test_supabase_js.py on a stack at its seed state; every query is the signed-in
// dashboard user's (role `authenticated`) unless it says otherwise.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { close, dashboard, dataOf, MACHINE_ID } from './clients.mjs'

const R101 = '00000000-0000-4000-8000-000000000101' // Al2O3, 10 steps, one loop
const R102 = '00000000-0000-4000-8000-000000000102' // laminate, 15 steps, nested loops
const db = await dashboard()
after(() => close(db))

test('a recipe with its steps: select("*, recipe_steps(*)") nests an array of whole rows', async () => {
  const recipes = dataOf(await db.from('recipes').select('*, recipe_steps(*)').order('name'))
  assert.deepEqual(recipes.map((r) => [r.id, r.recipe_steps.length]), [[R101, 10], [R102, 15]])
  const tma = recipes[0].recipe_steps.find((s) => s.name === 'TMA pulse')
  assert.deepEqual(tma.config, { valve: 1, duration_ms: 20 })
  assert.equal(tma.recipe_id, R101)
  assert.equal(recipes[0].version, 1, 'the parent keeps its own columns')
})

test('a step with its recipe: many-to-one nests an object', async () => {
  const step = dataOf(
    await db.from('recipe_steps').select('name, recipes(name, version)').eq('id', '00000000-0000-4000-8000-000000001105').single(),
  )
  assert.deepEqual(step, { name: 'TMA pulse', recipes: { name: 'Al2O3 TMA/H2O 100 cycles', version: 1 } })
})

test('!inner keeps only the parents whose embedding matches, and counts only them', async () => {
  const { data, count, error } = await db
    .from('recipes')
    .select('id, recipe_steps!inner(name)', { count: 'exact' })
    .eq('recipe_steps.name', 'DEZ pulse')
  assert.equal(error, null)
  assert.deepEqual(data, [{ id: R102, recipe_steps: [{ name: 'DEZ pulse' }] }])
  assert.equal(count, 1)
  const plain = dataOf(await db.from('recipes').select('id, recipe_steps(name)').eq('recipe_steps.name', 'DEZ pulse').order('name'))
  assert.deepEqual(plain, [{ id: R101, recipe_steps: [] }, { id: R102, recipe_steps: [{ name: 'DEZ pulse' }] }], 'without !inner the parents stay')
})

test('filters, order and limit on the embedded table apply inside each recipe', async () => {
  const recipes = dataOf(
    await db
      .from('recipes')
      .select('id, recipe_steps(name, sequence)')
      .eq('recipe_steps.type', 'valve')
      .order('sequence', { referencedTable: 'recipe_steps', ascending: false })
      .limit(2, { referencedTable: 'recipe_steps' })
      .order('name'),
  )
  assert.deepEqual(recipes.map((r) => r.id), [R101, R102])
  assert.deepEqual(recipes[0].recipe_steps, [{ name: 'H2O pulse', sequence: 2 }, { name: 'TMA pulse', sequence: 0 }])
  assert.deepEqual(recipes[1].recipe_steps, [{ name: 'H2O pulse', sequence: 2 }, { name: 'H2O pulse', sequence: 2 }])
})

test('JSON operators: payload->>recipe_id in select, filter and order', async () => {
  const commands = [
    { machine_id: MACHINE_ID, type: 'start_recipe', payload: { recipe_id: R101 } },
    { machine_id: MACHINE_ID, type: 'start_recipe', payload: { recipe_id: R102 } },
    { machine_id: MACHINE_ID, type: 'stop_recipe', payload: { reason: 'operator' } },
    { machine_id: MACHINE_ID, type: 'set_parameter', payload: { key: 'mfc_1.flow_sp', value: 20 } },
  ]
  dataOf(await db.from('machine_commands').insert(commands))
  const started = dataOf(
    await db
      .from('machine_commands')
      .select('type, recipe:payload->>recipe_id, payload->recipe_id')
      .eq('type', 'start_recipe')
      .order('payload->>recipe_id', { ascending: false }),
  )
  assert.deepEqual(started, [
    { type: 'start_recipe', recipe: R102, recipe_id: R102 },
    { type: 'start_recipe', recipe: R101, recipe_id: R101 },
  ])
  const one = dataOf(await db.from('machine_commands').select('id, payload').eq('payload->>recipe_id', R101))
  assert.deepEqual(one.map((c) => c.payload), [{ recipe_id: R101 }])
  const reasons = dataOf(await db.from('machine_commands').select('payload->>reason').not('payload->>reason', 'is', null))
  assert.deepEqual(reasons, [{ reason: 'operator' }])
  const setpoint = dataOf(
    await db.from('machine_commands').select('number:payload->value, text:payload->>value').gt('payload->value', 10),
  )
  assert.deepEqual(setpoint, [{ number: 20, text: '20' }], '-> keeps the JSON type, ->> gives text')
})

test('count: "exact" with range(): 206 Partial Content, the total read from Content-Range', async () => {
  const page = await db.from('recipe_steps').select('id', { count: 'exact' }).order('id').range(5, 9)
  assert.equal(page.error, null)
  assert.equal(page.status, 206)
  assert.equal(page.statusText, 'Partial Content')
  assert.equal(page.count, 25)
  assert.deepEqual(page.data.map((s) => s.id.slice(-4)), ['1106', '1107', '1108', '1109', '1110'])
  const whole = await db.from('recipes').select('id', { count: 'exact' }).range(0, 9)
  assert.deepEqual([whole.status, whole.count, whole.data.length], [200, 2, 2], 'a page holding every row is 200')
  const head = await db.from('recipe_steps').select('*', { count: 'exact', head: true }).eq('recipe_id', R101)
  assert.deepEqual([head.status, head.count, head.data], [200, 10, null])
})

test('a range past the end is the 416 error the client reports', async () => {
  const past = await db.from('recipes').select('id', { count: 'exact' }).range(5, 9)
  assert.equal(past.status, 416)
  assert.equal(past.data, null)
  assert.equal(past.count, null)
  assert.deepEqual(
    { code: past.error.code, message: past.error.message, details: past.error.details, hint: past.error.hint },
    {
      code: 'PGRST103',
      message: 'Requested range not satisfiable',
      details: 'An offset of 5 was requested, but there are only 2 rows.',
      hint: null,
    },
  )
})

test('.csv() answers PostgREST\'s CSV text', async () => {
  const { data, error, status } = await db.from('recipes').select('name, version').order('name').csv()
  assert.equal(error, null)
  assert.equal(status, 200)
  assert.equal(data, 'name,version\n"Al2O3 TMA/H2O 100 cycles",1\n"Al2O3/ZnO nanolaminate 5x(10+10)",1')
})

test('a GET RPC with a json argument: the text is parsed as jsonb, as the POST body is', async () => {
  const check = (config, get) => db.rpc('recipe_step_config_is_valid', { p_type: 'valve', p_config: config }, { get })
  // With { get: true } supabase-js puts each argument in the query string with `${value}`, so a dashboard
  // passes JSON text for a json/jsonb parameter.
  assert.equal(dataOf(await check(JSON.stringify({ valve: 1, duration_ms: 20 }), true)), true)
  assert.equal(dataOf(await check(JSON.stringify({ valve: 0, duration_ms: 20 }), true)), false)
  assert.equal(dataOf(await check({ valve: 1, duration_ms: 20 }, false)), true, 'POST agrees')
  const bad = await check({ valve: 1 }, true) // an object becomes "[object Object]": not JSON
  assert.equal(bad.status, 400)
  assert.equal(bad.error.code, '22P02')
})
