# shellcheck shell=bash
# Deploy state and history: ${DEPLOY_STATE_DIR}/<environment>.json, guarded by <environment>.lock (flock).
# Sourced: functions only; needs common.sh, jq and flock. Readers never need the lock; every writer holds it.
#
# The file is the source of truth for rollback (docs/DESIGN.md §7 "Deploy state file"):
#   {"schema":1, "environment":"production", "runtime":"compose",
#    "active_color":"green", "active_version":"1.4.2",
#    "colors":{"blue":{"version":"1.4.1","started_at":"…"}, "green":{"version":"1.4.2","started_at":"…"}},
#    "lb":{"blue":0,"green":100},
#    "history":[{"id":7,"ts":"…","strategy":"blue-green","version":"1.4.2","color":"green",
#                "result":"success","previous_version":"1.4.1","actor":"ci","runtime":"compose"}]}
# Entries also carry what was measured: duration_s, and for a lease hand-over
# "handover": {"from", "to", "released_s", "active_s"} (seconds from the request), "waited_for_run" (the run the
# old color finished first) or "stopped_run" (the run a --force-handover stopped into its safe state).
# `result` is success, aborted (the new color failed its checks, traffic untouched), aborted@<p>% (a canary
# step failed), rolled-back (failed after the switch, traffic sent back) or partial. Every attempt is appended.
# Writes are atomic: a temporary file in the same directory, then mv.

DEPLOY_STATE_DIR="${DEPLOY_STATE_DIR:-/var/lib/ald-agent/deploy}"
DEPLOY_LOCK_WAIT="${DEPLOY_LOCK_WAIT:-0}"
DEPLOY_ACTOR="${DEPLOY_ACTOR:-${SUDO_USER:-${USER:-unknown}}}"

state_path() { printf '%s/%s.json' "$DEPLOY_STATE_DIR" "$ENVIRONMENT"; }
state_lock_path() { printf '%s/%s.lock' "$DEPLOY_STATE_DIR" "$ENVIRONMENT"; }

# Take the environment's lock for the rest of the process (released when it exits). A dry run takes none.
state_lock() {
  local lock
  lock="$(state_lock_path)"
  if [ "$DRY_RUN" -eq 1 ]; then
    info "(dry run: no lock taken on $lock)"
    return 0
  fi
  mkdir -p "$DEPLOY_STATE_DIR" || die "cannot create $DEPLOY_STATE_DIR"
  # fd 9 stays open on the lock file until the process exits, so the lock lasts the whole run.
  exec 9>>"$lock" || die "cannot open $lock"
  local wait=(-n)
  if [ "$DEPLOY_LOCK_WAIT" != 0 ]; then wait=(-w "$DEPLOY_LOCK_WAIT"); fi
  flock "${wait[@]}" 9 \
    || die "another deploy or rollback of '$ENVIRONMENT' holds $lock (DEPLOY_LOCK_WAIT=$DEPLOY_LOCK_WAIT s)"
}

state_initial() {
  jq -n --arg env "$ENVIRONMENT" --arg runtime "$RUNTIME" '{
    schema: 1, environment: $env, runtime: $runtime, active_color: null, active_version: null,
    colors: {blue: {version: null}, green: {version: null}}, lb: {blue: 100, green: 0}, history: []}'
}

# The whole state document (the initial one when the environment was never deployed).
state_json() {
  local file
  file="$(state_path)"
  if [ -f "$file" ]; then
    jq -e 'select(.schema == 1)' "$file" 2>/dev/null || die "$file is not a schema-1 deploy state file"
  else
    state_initial
  fi
}

# state_get FILTER [jq args...]: one value from the state, "" for null.
state_get() {
  local filter="$1"
  shift
  state_json | jq -r "$@" "($filter) // empty"
}

# state_write DESCRIPTION FILTER [jq args...]: apply a jq update to the state, atomically.
state_write() {
  local description="$1" filter="$2" file next
  shift 2
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '    + state: %s\n' "$description"
    return 0
  fi
  file="$(state_path)"
  next="$(mktemp "$DEPLOY_STATE_DIR/.$ENVIRONMENT.json.XXXXXX")"
  if ! state_json | jq "$@" --arg now "$(utc_now)" "$filter" >"$next"; then
    rm -f "$next"
    die "could not update $file"
  fi
  mv "$next" "$file"
}

# state_set_color COLOR VERSION: what runs on COLOR now, plus what the runtime told about it (RT_COLOR_INFO,
# a JSON object such as {"pid": 12304, "port": 8001} from the local runtime; {} otherwise).
state_set_color() {
  local color="$1" version="$2"
  state_write "$color runs $version" \
    '.colors[$c] = ({version: $v, started_at: $now} + $info)' --arg c "$color" --arg v "$version" \
    --argjson info "${RT_COLOR_INFO:-"{}"}"
  RT_COLOR_INFO="{}"
}

state_set_active() {
  local color="$1" version="$2"
  state_write "active color $color ($version), weights $color=100 $(other_color "$color")=0" \
    '.active_color = $c | .active_version = $v | .lb = {($c): 100, ($o): 0}' \
    --arg c "$color" --arg o "$(other_color "$color")" --arg v "$version"
}

# state_record STRATEGY VERSION COLOR RESULT PREVIOUS_VERSION [DETAIL]: append one history entry.
state_record() {
  local strategy="$1" version="$2" color="$3" result="$4" previous="$5" detail="${6:-}"
  state_write "history += $strategy $version on $color: $result" \
    '.runtime = $runtime
     | .history += [{id: ((.history | map(.id) | max // 0) + 1), ts: $now, strategy: $s, version: $v,
                     color: $c, result: $r, previous_version: (if $p == "" then null else $p end),
                     actor: $actor, runtime: $runtime} + (if $d == "" then {} else {detail: $d} end) + $facts]' \
    --arg s "$strategy" --arg v "$version" --arg c "$color" --arg r "$result" --arg p "$previous" \
    --arg d "$detail" --arg actor "$DEPLOY_ACTOR" --arg runtime "$RUNTIME" --argjson facts "$(record_facts)"
}

# What this attempt measured, merged into its history entry: duration_s since the script started and the
# facts flow.sh noted with note_fact (e.g. the lease hand-over's timings).
RECORD_FACTS="{}"
note_fact() {
  local name="$1" json="$2"
  RECORD_FACTS="$(jq -c --arg k "$name" --argjson v "$json" '.[$k] = $v' <<<"$RECORD_FACTS")"
}
record_facts() {
  jq -c --argjson d "$(elapsed_s "$START_US")" '. + {duration_s: $d}' <<<"$RECORD_FACTS"
}

# The version rollback goes back to: the newest successful deploy whose version is not the active one and was
# not rolled back from since (so rolling back twice does not return to the version the first rollback left).
state_last_good_version() {
  state_json | jq -r '.active_version as $a
    | (reduce .history[] as $h ({};
         if $h.result != "success" then .
         elif ($h.strategy | startswith("rollback")) and $h.previous_version != null then .[$h.previous_version] = false
         else .[$h.version] = true end)) as $good
    | [.history[] | select(.result == "success" and .version != $a and ($good[.version] // false))]
    | last | .version // empty'
}
