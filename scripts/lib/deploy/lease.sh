# shellcheck shell=bash
# The PLC lease hand-over between the two colors, through the agents' admin routes (agent/safety/handover.py).
# Sourced: functions only; needs common.sh, state.sh (note_fact), jq, curl and one runtime (rt_health_url).
#
# Only the lease holder claims commands and writes to the PLC, and a deploy must never cut a recipe. So the
# lease moves before any traffic does:
#   1. POST OLD /admin/handover[?force=true]: OLD stops claiming, lets a running recipe finish (force: stops it
#      into its safe state) and releases the lease; GET /admin/handover is polled until "released", at most
#      HANDOVER_TIMEOUT seconds. On timeout OLD is told to resume (POST /admin/activate): nothing changed.
#   2. POST NEW /admin/activate: NEW holds (and acquires) the lease at once instead of at its next standby poll.
#   3. NEW's /health must say role "active" within LEASE_TIMEOUT seconds (an OLD that could not be asked
#      releases nothing: its lease then expires on the server within its TTL, 15 s). Otherwise the lease is
#      given back to OLD.
# The admin token is DEPLOY_ADMIN_TOKEN, else the ADMIN_TOKEN line of the environment file; it is passed to
# curl on stdin (-K -), never on a command line, and never printed. While ADMIN_TOKEN is being rotated the
# color still running holds the old one: DEPLOY_ADMIN_TOKEN_PREVIOUS (the old token) is tried once when a
# color answers 401 to the current one (docs/RUNBOOK.md, Key rotation).

HANDOVER_TIMEOUT="${HANDOVER_TIMEOUT:-${DEPLOY_TIMEOUT:-120}}"
LEASE_TIMEOUT="${LEASE_TIMEOUT:-20}"
LEASE_POLL_INTERVAL="${LEASE_POLL_INTERVAL:-0.1}"
FORCE_HANDOVER="${FORCE_HANDOVER:-0}"

agent_url() {
  local url
  url="$(rt_health_url "$1")"
  printf '%s' "${url%/health}"
}

# Read the admin token into ADMIN_TOKEN_VALUE (in the main shell: die must end the script); a dry run needs none.
admin_token_load() {
  [ "$DRY_RUN" -eq 1 ] && return 0
  ADMIN_TOKEN_VALUE="${DEPLOY_ADMIN_TOKEN:-}"
  if [ -z "$ADMIN_TOKEN_VALUE" ] && [ -f "$(rt_env_file)" ]; then
    ADMIN_TOKEN_VALUE="$(sed -n 's/^ADMIN_TOKEN=//p' "$(rt_env_file)" | tail -n 1)"
  fi
  [ -n "$ADMIN_TOKEN_VALUE" ] || die "no admin token: set ADMIN_TOKEN in $(rt_env_file) or DEPLOY_ADMIN_TOKEN"
  [[ "$ADMIN_TOKEN_VALUE" =~ ^[A-Za-z0-9._~+/=-]+$ ]] || die "ADMIN_TOKEN has characters other than [A-Za-z0-9._~+/=-]"
  ADMIN_TOKEN_PREVIOUS="${DEPLOY_ADMIN_TOKEN_PREVIOUS:-}"
  [[ -z "$ADMIN_TOKEN_PREVIOUS" || "$ADMIN_TOKEN_PREVIOUS" =~ ^[A-Za-z0-9._~+/=-]+$ ]] \
    || die "DEPLOY_ADMIN_TOKEN_PREVIOUS has characters other than [A-Za-z0-9._~+/=-]"
}

# admin_curl TOKEN METHOD URL: curl's answer body, a newline, the HTTP code (the token never on a command line).
admin_curl() {
  printf 'header = "Authorization: Bearer %s"\n' "$1" | curl -sS -K - -X "$2" -o - -w '\n%{http_code}' --max-time 5 "$3" 2>&1
}

# admin_request METHOD COLOR PATH: the JSON answer on stdout; 1 (with a warning) when unreachable or not 2xx.
admin_request() {
  local method="$1" color="$2" path="$3" url out code
  url="$(agent_url "$color")$path"
  out="$(admin_curl "${ADMIN_TOKEN_VALUE:?admin_token_load first}" "$method" "$url")" || {
    warn "$method $url: ${out//$'\n'/ }"
    return 1
  }
  code="${out##*$'\n'}"
  if [ "$code" = 401 ] && [ -n "${ADMIN_TOKEN_PREVIOUS:-}" ]; then
    info "$color refuses the current admin token: trying the previous one (rotation)" >&2  # stdout is the answer
    out="$(admin_curl "$ADMIN_TOKEN_PREVIOUS" "$method" "$url")" || {
      warn "$method $url: ${out//$'\n'/ }"
      return 1
    }
    code="${out##*$'\n'}"
  fi
  if [[ "$code" != 2?? ]]; then
    warn "$method $url answered HTTP $code: ${out%$'\n'*}"
    return 1
  fi
  printf '%s' "${out%$'\n'*}"
}

# The role COLOR's /health reports (active | standby), or nothing when it does not answer.
agent_role() {
  curl -s --max-time 2 "$(rt_health_url "$1")" 2>/dev/null | jq -r '.role // empty' 2>/dev/null || true
}

# lease_release COLOR: hand-over request, then wait for "released". 0 released, 1 timed out (COLOR resumed
# holding), 2 COLOR could not be asked (down or unreachable).
lease_release() {
  local color="$1" path="/admin/handover" body state run waited="" deadline
  local how="lets a running recipe finish"
  if [ "$FORCE_HANDOVER" -eq 1 ]; then path+="?force=true"; how="stops a running recipe (safe state)"; fi
  step "lease: $color stops claiming, $how, releases (up to ${HANDOVER_TIMEOUT}s)"
  if [ "$DRY_RUN" -eq 1 ]; then
    info "+ POST $(agent_url "$color")$path (Authorization: Bearer \$ADMIN_TOKEN)"
    info "+ poll: GET $(agent_url "$color")/admin/handover → state released"
    return 0
  fi
  body="$(admin_request POST "$color" "$path")" || return 2
  deadline=$((SECONDS + HANDOVER_TIMEOUT))
  while :; do
    state="$(jq -r '.state // empty' <<<"$body")"
    run="$(jq -r '.run // empty' <<<"$body")"
    if [ "$state" = released ]; then
      info "$color released the lease${waited:+ after run $waited ended}"
      return 0
    fi
    if [ -n "$run" ] && [ "$run" != "$waited" ]; then
      waited="$run"
      if [ "$FORCE_HANDOVER" -eq 1 ]; then  # the history must not claim a forced stop waited for the run
        info "$color is stopping recipe run $run into its safe state"
        note_fact stopped_run "$(jq -nc --arg r "$run" '$r')"
      else
        info "$color is running recipe run $run: waiting for it to finish"
        note_fact waited_for_run "$(jq -nc --arg r "$run" '$r')"
      fi
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      warn "$color did not release the lease within ${HANDOVER_TIMEOUT}s (state ${state:-?}${run:+, run $run}); it resumes holding it"
      admin_request POST "$color" /admin/activate >/dev/null || warn "could not tell $color to resume"
      return 1
    fi
    sleep "$LEASE_POLL_INTERVAL"
    body="$(admin_request GET "$color" /admin/handover)" || body='{}'
  done
}

# lease_activate COLOR: hold the lease (again) and acquire it now if free.
lease_activate() {
  local color="$1"
  if [ "$DRY_RUN" -eq 1 ]; then
    info "+ POST $(agent_url "$color")/admin/activate (Authorization: Bearer \$ADMIN_TOKEN)"
    return 0
  fi
  admin_request POST "$color" /admin/activate >/dev/null
}

# lease_wait_active COLOR TIMEOUT_S: until COLOR's /health says role "active".
lease_wait_active() {
  local color="$1" timeout="$2" deadline role
  if [ "$DRY_RUN" -eq 1 ]; then
    info "+ poll: GET $(rt_health_url "$color") → role active (up to ${timeout}s)"
    return 0
  fi
  deadline=$((SECONDS + timeout))
  while :; do
    role="$(agent_role "$color")"
    [ "$role" = active ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      warn "$color is not the lease holder after ${timeout}s (role ${role:-unknown})"
      return 1
    fi
    sleep "$LEASE_POLL_INTERVAL"
  done
}

# lease_move NEW [OLD]: the lease from OLD (none on a first deploy) to NEW. 0 when NEW holds it; 1 when it did
# not move (OLD keeps or gets it back). The timings go into the history entry ("handover").
lease_move() {
  local new="$1" old="${2:-}" started rc=0 released_s=null active_s
  started="$(now_us)"
  if [ -n "$old" ]; then
    lease_release "$old" || rc=$?
    case "$rc" in
      0) released_s="$(elapsed_s "$started")" ;;
      2) warn "$old could not be asked to hand over; its lease expires on the server by itself (TTL 15 s)" ;;
      *) return 1 ;;
    esac
  fi
  step "lease: $new takes it (activate, then /health role active, up to ${LEASE_TIMEOUT}s)"
  if ! lease_activate "$new" || ! lease_wait_active "$new" "$LEASE_TIMEOUT"; then
    if [ -n "$old" ] && [ "$DRY_RUN" -eq 0 ]; then
      step "lease: back to $old"
      FORCE_HANDOVER=1 lease_release "$new" || true
      if ! { lease_activate "$old" && lease_wait_active "$old" "$LEASE_TIMEOUT"; }; then
        warn "$old did not take the lease back; check both colors' /health"
      fi
    fi
    return 1
  fi
  active_s="$(elapsed_s "$started")"
  [ "$DRY_RUN" -eq 1 ] || info "$new holds the lease (${active_s}s after the hand-over began)"
  note_fact handover "$(jq -nc --arg f "$old" --arg t "$new" --argjson r "$released_s" --argjson a "$active_s" \
    '{from: (if $f == "" then null else $f end), to: $t, released_s: $r, active_s: $a}')"
}
