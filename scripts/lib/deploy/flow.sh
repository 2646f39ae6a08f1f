# shellcheck shell=bash source-path=SCRIPTDIR
# The building blocks of every strategy and of rollback, shared by all runtimes. Sourced: functions only;
# needs common.sh, state.sh, lb.sh, lease.sh and one runtime-<name>.sh.

DEPLOY_TIMEOUT="${DEPLOY_TIMEOUT:-120}"
HEALTH_INTERVAL_S="${HEALTH_INTERVAL_S:-1}"
POST_SWITCH_SOAK="${POST_SWITCH_SOAK:-3}"
SCRIPTS_DIR="${SCRIPTS_DIR:-$ROOT/scripts}"

# load_runtime NAME: source runtime-NAME.sh next to this file.
load_runtime() {
  local lib
  lib="$(dirname "${BASH_SOURCE[0]}")/runtime-$1.sh"
  [ -f "$lib" ] || die "runtime '$1' is not available yet (no $lib)"
  # shellcheck source=runtime-compose.sh
  source "$lib"
}

# Read the current deployment into ACTIVE_COLOR / ACTIVE_VERSION ("" when never deployed).
read_active() {
  ACTIVE_COLOR="$(state_get .active_color)"
  ACTIVE_VERSION="$(state_get .active_version)"
  if [ -n "$ACTIVE_COLOR" ]; then
    info "active: $ACTIVE_COLOR on $ACTIVE_VERSION"
  else
    info "active: none (first deploy of '$ENVIRONMENT')"
  fi
}

# check_health COLOR [RETRIES]: the color's own /health through scripts/health-check.sh.
check_health() {
  local color="$1" url retries
  url="$(rt_health_url "$color")"
  retries="${2:-$(( DEPLOY_TIMEOUT / HEALTH_INTERVAL_S > 0 ? DEPLOY_TIMEOUT / HEALTH_INTERVAL_S : 1 ))}"
  local args=(--url "$url" --retries "$retries" --interval "$HEALTH_INTERVAL_S" --quiet)
  step "health of $color: $url"
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '    + %s\n' "$(quoted "$SCRIPTS_DIR/health-check.sh" "${args[@]}")"
    return 0
  fi
  "$SCRIPTS_DIR/health-check.sh" "${args[@]}" || { warn "$color failed its health check at $url"; return 1; }
}

# verify_color COLOR: ready for the runtime, healthy by its own /health, UP (L7OK) for HAProxy at weight 0.
verify_color() {
  local color="$1"
  rt_wait_ready "$color" "$DEPLOY_TIMEOUT" || return 1
  check_health "$color" || return 1
  lb_wait_up "$color" "$DEPLOY_TIMEOUT" || return 1
}

# start_color COLOR VERSION: start it in the runtime and record what runs there.
start_color() {
  local color="$1" version="$2"
  rt_start "$color" "$version"
  state_set_color "$color" "$version"
}

stop_color() {
  local color="$1"
  rt_stop "$color"
  state_write "$color stopped" '.colors[$c] = {version: null, stopped_at: $now}' --arg c "$color"
}

# switch_traffic NEW OLD: the PLC lease to NEW (lease.sh), then all traffic to NEW (raised first, one line),
# then OLD drained. 1 when the lease did not move; traffic is then untouched and OLD still holds the lease.
switch_traffic() {
  local new="$1" old="$2"
  lease_move "$new" "$old" || return 1
  lb_weights "$new" 100 "$old" 0
  lb_drain "$old"
}

# switch_back OLD NEW: undo a switch_traffic after NEW failed: the lease back to OLD (forced on NEW: a run it
# started must not keep OLD waiting), traffic back, NEW drained.
switch_back() {
  local old="$1" new="$2"
  FORCE_HANDOVER=1 lease_move "$old" "$new" || warn "the lease did not go back to $old; check both /health"
  lb_weights "$old" 100 "$new" 0
  lb_drain "$new"
}

# After a switch, watch the new color for POST_SWITCH_SOAK seconds: it must stay healthy, UP and active.
soak() {
  local color="$1"
  step "watching $color for ${POST_SWITCH_SOAK}s with traffic"
  pause "$POST_SWITCH_SOAK"
  check_health "$color" 3 || return 1
  lb_wait_up "$color" 5 || return 1
  lease_wait_active "$color" 3 || return 1
}

# fail_color COLOR: diagnostics first, then stop it, traffic already elsewhere.
fail_color() {
  local color="$1"
  rt_diagnose "$color"
  stop_color "$color"
}

# confirm QUESTION: yes when --yes was given or the terminal operator answers y; refuse without a terminal.
confirm() {
  [ "${ASSUME_YES:-0}" -eq 1 ] && return 0
  [ "$DRY_RUN" -eq 1 ] && return 0
  [ -t 0 ] || die "$1: refusing without --yes (no terminal to ask)"
  local answer
  read -r -p "$1 [y/N] " answer
  [[ "$answer" =~ ^[Yy]([Ee][Ss])?$ ]] || die "cancelled"
}
