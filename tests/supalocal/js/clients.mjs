// The clients a dashboard makes, from what tests/supalocal/test_supabase_js.py puts in the environment.
//
// A dashboard user's client: the project's anon key plus the signed-in user's JWT (role `authenticated`),
// passed as `accessToken` because supalocal has no GoTrue to sign in with. The service client sets up rows a
// dashboard may not write (another machine). Node 20 has no global WebSocket, so realtime-js needs `ws` as its
// transport (it says so itself: "For Node.js < 22, install "ws" package and provide it via the transport option").
import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'

function required(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: run these tests through tests/supalocal/test_supabase_js.py`)
  return value
}

export const URL = required('SUPABASE_URL')
export const MACHINE_ID = required('MACHINE_ID')
const ANON_KEY = required('SUPABASE_ANON_KEY')
const SERVICE_KEY = required('SUPABASE_SERVICE_ROLE_KEY')
const USER_TOKEN = required('SUPABASE_USER_TOKEN')

const options = {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: WebSocket },
}

/** The signed-in dashboard user (role `authenticated`), as a browser dashboard has it once signed in. */
export async function dashboard() {
  const client = createClient(URL, ANON_KEY, { ...options, accessToken: async () => USER_TOKEN })
  // supabase-js hands the token to realtime in a promise of its own; a channel joined before it resolved would
  // join as anon (a browser dashboard subscribes after sign-in, when the token is long set).
  await client.realtime.setAuth()
  return client
}

/** The service role: for the setup a dashboard user may not do. */
export function service() {
  return createClient(URL, SERVICE_KEY, options)
}

/** Leave every channel and close the client's socket (the server then sees each leave). */
export async function close(client) {
  await client.removeAllChannels() // which disconnects, leaving a 10 s timer behind: hence --test-force-exit
}

/** Join `channel`; resolves once the server accepted the join, rejects on an error or a timeout. */
export function subscribed(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve(channel)
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(err ?? new Error(`${channel.topic}: ${status}`))
    })
  })
}

/** Wait until `check()` is true, polling; fails with `what` after `timeoutMs`. */
export async function until(check, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** `data` of a query, or throw its error (so a failed request fails the test with PostgREST's message). */
export function dataOf({ data, error }) {
  if (error) throw new Error(`${error.code}: ${error.message}`)
  return data
}
