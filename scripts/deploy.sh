#!/usr/bin/env bash
# Deploy a new agent version to one environment, without dropping a request (docs/DESIGN.md §7).
#
# The new version starts on the standby color as a lease standby and must be healthy (its /health and HAProxy's
# checks). Then the PLC lease moves (the old color finishes a running recipe first, scripts/lib/deploy/lease.sh),
# and only then traffic; the old color is drained and kept warm at weight 0 for a fast rollback. A failure
# before the switch leaves lease and traffic untouched; a failure after it gives both back to the old color
# (automatic rollback). Every attempt is appended to the environment's deploy history (state.sh).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENVIRONMENT="${DEPLOY_ENVIRONMENT:-}"
STRATEGY="${DEPLOY_STRATEGY:-blue-green}"
TAG="${DEPLOY_TAG:-}"
RUNTIME="${DEPLOY_RUNTIME:-compose}"
DEPLOY_TIMEOUT="${DEPLOY_TIMEOUT:-120}"
CANARY_STEPS="${CANARY_STEPS:-10 25 50 100}"
CANARY_PAUSE="${CANARY_PAUSE:-30}"
KEEP_OLD_WARM="${KEEP_OLD_WARM:-1}"
FORCE=0
FORCE_HANDOVER="${FORCE_HANDOVER:-0}"
IMAGE_SOURCE="${DEPLOY_IMAGE_SOURCE:-local}"
DRY_RUN=0

LIB="$ROOT/scripts/lib/deploy"
# shellcheck source=lib/deploy/common.sh
source "$LIB/common.sh"
# shellcheck source=lib/deploy/state.sh
source "$LIB/state.sh"
# shellcheck source=lib/deploy/lb.sh
source "$LIB/lb.sh"
# shellcheck source=lib/deploy/lease.sh
source "$LIB/lease.sh"
# shellcheck source=lib/deploy/flow.sh
source "$LIB/flow.sh"

usage() {
  cat <<USAGE
usage: scripts/deploy.sh -e ENV -t TAG [-s STRATEGY] [--runtime compose|local] [--timeout S] [--force]
                        [--force-handover] [--build | --pull] [--dry-run]

Deploys agent version TAG to environment ENV.

  -e, --environment ENV    environment name: state file, compose project ald-agent-ENV, config/ENV.env
  -t, --tag TAG            image tag / version to deploy
  -s, --strategy NAME      blue-green | canary | rolling (DEPLOY_STRATEGY, default $STRATEGY)
                             blue-green  new version on the standby color, checks, lease hand-over, traffic
                                         switch, old color kept warm (standby) for an instant rollback
                             canary      like blue-green, but read traffic moves in steps ($CANARY_STEPS %),
                                         each gated on health, role and no new 5xx, agent errors or failed frames
                                         ($CANARY_PAUSE s per step, CANARY_PAUSE); the old color stays warm
                             rolling     stop-then-start of the active color in place, for hosts that cannot
                                         run two agents (e.g. a PLC taking one Modbus connection): the
                                         machine has no agent for the restart (the gap is recorded)
  -r, --runtime NAME       compose | local (DEPLOY_RUNTIME, default $RUNTIME)
  -T, --timeout S          seconds a new color has to become healthy, and the old one to finish a running
                           recipe and release the lease (DEPLOY_TIMEOUT, default $DEPLOY_TIMEOUT)
  -f, --force              deploy even when TAG is already the active version
  -F, --force-handover     do not wait for a running recipe: the old color stops it into its safe state
  -b, --build              compose: build the image ald-agent:TAG from this checkout before starting the color
  -p, --pull               compose: pull the image (AGENT_IMAGE:TAG) before starting the color
                           (neither: the image must be on the host; DEPLOY_IMAGE_SOURCE local|build|pull,
                           default $IMAGE_SOURCE)
  -n, --dry-run            print every step and command, change nothing (no engine or socket needed)
  -h, --help               this help

Environment: DEPLOY_STATE_DIR (default $DEPLOY_STATE_DIR), HAPROXY_SOCKET (default $HAPROXY_SOCKET),
DRAIN_TIMEOUT ($DRAIN_TIMEOUT s), POST_SWITCH_SOAK ($POST_SWITCH_SOAK s), KEEP_OLD_WARM ($KEEP_OLD_WARM; 0 stops the
old color after a blue-green switch), DEPLOY_LOCK_WAIT ($DEPLOY_LOCK_WAIT s to wait for another deploy's lock),
LEASE_TIMEOUT ($LEASE_TIMEOUT s for the new color to hold the lease), DEPLOY_ADMIN_TOKEN (default: ADMIN_TOKEN
of the environment file), DEPLOY_ADMIN_TOKEN_PREVIOUS (the old token during a rotation, tried on a 401), HEALTH_ACCEPT (statuses health-check.sh accepts; "healthy" refuses a degraded color).
Local runtime: LOCAL_RELEASES_DIR (default /opt/ald-agent/releases), LOCAL_RUN_DIR, AGENT_BLUE_PORT, AGENT_GREEN_PORT,
HAPROXY_HTTP_PORT (see scripts/lib/deploy/runtime-local.sh).
Exit codes: 0 deployed, 1 failed (traffic left on, or sent back to, a healthy color), 2 usage error.
USAGE
}

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      -e|--environment) ENVIRONMENT="$(value "$@")"; shift 2 ;;
      -t|--tag) TAG="$(value "$@")"; shift 2 ;;
      -s|--strategy) STRATEGY="$(value "$@")"; shift 2 ;;
      -r|--runtime) RUNTIME="$(value "$@")"; shift 2 ;;
      -T|--timeout) DEPLOY_TIMEOUT="$(value "$@")"; shift 2 ;;
      -f|--force) FORCE=1; shift ;;
      -F|--force-handover) FORCE_HANDOVER=1; shift ;;
      -b|--build) IMAGE_SOURCE=build; shift ;;
      -p|--pull) IMAGE_SOURCE=pull; shift ;;
      -n|--dry-run) DRY_RUN=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  [ -n "$ENVIRONMENT" ] || usage_error "--environment is required"
  valid_environment "$ENVIRONMENT" || usage_error "bad environment name '$ENVIRONMENT' ([a-z][a-z0-9_-]*)"
  [ -n "$TAG" ] || usage_error "--tag is required"
  valid_tag "$TAG" || usage_error "bad tag '$TAG' (a Docker image tag)"
  case "$STRATEGY" in blue-green|canary|rolling) ;; *) usage_error "unknown strategy '$STRATEGY'" ;; esac
  case "$RUNTIME" in compose|local) ;; *) usage_error "unknown runtime '$RUNTIME'" ;; esac
  case "$IMAGE_SOURCE" in local|build|pull) ;; *) usage_error "DEPLOY_IMAGE_SOURCE must be local, build or pull" ;; esac
  if [ "$IMAGE_SOURCE" != local ] && [ "$RUNTIME" != compose ]; then
    usage_error "--build and --pull are for the compose runtime (the local runtime runs release directories)"
  fi
  [[ "$DEPLOY_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout must be a whole number of seconds"
  for pct in $CANARY_STEPS; do
    [[ "$pct" =~ ^[1-9][0-9]?$|^100$ ]] || usage_error "CANARY_STEPS must be percentages 1..100, got '$pct'"
  done
}

prepare() {
  local mode=""
  [ "$DRY_RUN" -eq 0 ] || mode=" (dry run)"
  step "deploy $TAG to $ENVIRONMENT: $STRATEGY, runtime $RUNTIME$mode"
  load_runtime "$RUNTIME"
  [ "$DRY_RUN" -eq 1 ] || require_tools jq socat flock curl
  state_lock
  rt_check
  admin_token_load
  read_active
  if [ "$TAG" = "$ACTIVE_VERSION" ] && [ "$FORCE" -eq 0 ]; then
    die "$TAG is already active on $ACTIVE_COLOR (--force deploys it again)"
  fi
  if [ "$STRATEGY" = canary ] && [ -z "$ACTIVE_COLOR" ]; then
    die "canary needs a version already serving; use --strategy blue-green first"
  fi
  NEW_COLOR="$(other_color "${ACTIVE_COLOR:-green}")"
  OLD_COLOR="$(other_color "$NEW_COLOR")"
  if [ "$STRATEGY" = rolling ] && [ -n "$ACTIVE_COLOR" ]; then NEW_COLOR="$ACTIVE_COLOR"; fi  # in place
  rt_prepare
  lb_require_socket
}

# Start TAG on COLOR and verify it; on failure stop it, record RESULT and exit 1 (traffic untouched).
bring_up() {
  local color="$1"
  start_color "$color" "$TAG"
  if ! verify_color "$color"; then
    fail_color "$color"
    state_record "$STRATEGY" "$TAG" "$color" aborted "$ACTIVE_VERSION" "$color failed its checks before any traffic"
    die "$TAG on $color failed its checks; traffic stays on ${ACTIVE_COLOR:-nothing}"
  fi
}

# Lease and traffic to COLOR; if that fails, nothing moved and we exit 1; if COLOR then fails its soak, lease
# and traffic go back to FROM (when FROM served) and we exit 1.
cut_over() {
  local color="$1" from="$2"
  if [ -n "$ACTIVE_COLOR" ]; then
    if ! switch_traffic "$color" "$from"; then
      fail_color "$color"
      state_record "$STRATEGY" "$TAG" "$color" aborted "$ACTIVE_VERSION" "the lease did not move to $color"
      die "the lease did not move from $from to $color; $from keeps lease and traffic ($ACTIVE_VERSION)"
    fi
  else
    lease_move "$color" || { fail_color "$color"; state_record "$STRATEGY" "$TAG" "$color" aborted "" \
      "$color did not take the lease"; die "$TAG on $color did not take the lease"; }
    lb_weights "$color" 100 "$from" 0  # first deploy: nothing served before, nothing to drain
  fi
  if soak "$color"; then return 0; fi
  if [ -n "$ACTIVE_COLOR" ]; then
    step "automatic rollback: lease and traffic back to $from"
    switch_back "$from" "$color"
  fi
  fail_color "$color"
  state_record "$STRATEGY" "$TAG" "$color" rolled-back "$ACTIVE_VERSION" "$color failed after the switch"
  die "$TAG on $color failed after the switch; lease and traffic are back on ${ACTIVE_COLOR:-nothing}"
}

finish() {
  local color="$1"
  state_set_active "$color" "$TAG"
  state_record "$STRATEGY" "$TAG" "$color" success "$ACTIVE_VERSION"
  step "done: $ENVIRONMENT serves $TAG from $color"
}

deploy_blue_green() {
  bring_up "$NEW_COLOR"
  cut_over "$NEW_COLOR" "$OLD_COLOR"
  if [ "$KEEP_OLD_WARM" -eq 0 ] && [ -n "$ACTIVE_COLOR" ]; then stop_color "$OLD_COLOR"; fi
  finish "$NEW_COLOR"
}

# 5xx answers HAProxy counted for the canary so far (0 in a dry run).
canary_5xx() {
  if [ "$DRY_RUN" -eq 1 ]; then echo 0; else lb_5xx "$NEW_COLOR"; fi
}

# The canary agent's own error counters: the sum of ald_*_errors_total and ald_failed_frames_total on its
# /metrics (a PLC that went away shows as failed frames, not as request errors: the agent stops asking it).
# 0 in a dry run, and when /metrics does not answer (the health gate catches a canary that died; a failed curl
# must not end the script under set -e before the rollback).
canary_agent_errors() {
  [ "$DRY_RUN" -eq 1 ] && { echo 0; return 0; }
  local metrics
  metrics="$(curl -s --max-time 3 "$(agent_url "$NEW_COLOR")/metrics")" || metrics=""
  awk '/^ald_([a-z_]*_errors|failed_frames)_total[ {]/ { sum += $NF } END { printf "%d\n", sum }' <<<"$metrics"
}

# Canary: the new color takes the lease (the machine has one writer: a PLC cannot be "10 % commanded"), the
# old one stays warm as standby; read traffic then moves in CANARY_STEPS, each step a bake period gated on the
# canary's health and role, no new 5xx from HAProxy and no new agent errors. A failed gate gives lease and
# traffic back to the old color.
deploy_canary() {
  bring_up "$NEW_COLOR"
  if ! lease_move "$NEW_COLOR" "$OLD_COLOR"; then
    fail_color "$NEW_COLOR"
    state_record canary "$TAG" "$NEW_COLOR" aborted "$ACTIVE_VERSION" "the lease did not move to $NEW_COLOR"
    die "the lease did not move to $NEW_COLOR; $OLD_COLOR keeps lease and traffic"
  fi
  local pct http_before http_after agent_before agent_after
  for pct in $CANARY_STEPS; do
    http_before="$(canary_5xx)"
    agent_before="$(canary_agent_errors)"
    lb_weights "$NEW_COLOR" "$pct" "$OLD_COLOR" "$((100 - pct))"
    pause "$CANARY_PAUSE"
    http_after="$(canary_5xx)"
    agent_after="$(canary_agent_errors)"
    if ! check_health "$NEW_COLOR" 3 || ! lease_wait_active "$NEW_COLOR" 3 \
        || [ "${http_after:-0}" -gt "${http_before:-0}" ] || [ "${agent_after:-0}" -gt "${agent_before:-0}" ]; then
      warn "canary failed at $pct%: $((http_after - http_before)) new 5xx, $((agent_after - agent_before)) new agent error(s)"
      step "canary rollback: lease and traffic back to $OLD_COLOR"
      switch_back "$OLD_COLOR" "$NEW_COLOR"
      fail_color "$NEW_COLOR"
      state_record canary "$TAG" "$NEW_COLOR" "aborted@$pct%" "$ACTIVE_VERSION" "failed at $pct% of traffic"
      die "canary of $TAG aborted at $pct%; lease and traffic are back on $OLD_COLOR ($ACTIVE_VERSION)"
    fi
  done
  lb_drain "$OLD_COLOR"
  finish "$NEW_COLOR"
}

# Rolling, in place: one agent at a time. The other color is stopped if it runs (it would take the lease in the
# gap); the active color hands the lease over to nobody (a recipe finishes first), stops, and restarts on TAG.
# The machine has no agent between the stop and the new lease: commands wait in the table (they are claimed
# after the gap, none is lost) and HAProxy answers 503 to reads; the gap is measured and recorded. If TAG
# fails its checks, the previous version is started again on the same color.
deploy_rolling() {
  local color="$NEW_COLOR" other started
  other="$(other_color "$color")"
  if [ -z "$ACTIVE_COLOR" ]; then deploy_blue_green; return; fi
  if [ -n "$(state_get ".colors.$other.version")" ]; then stop_color "$other"; fi
  warn "rolling: $ENVIRONMENT has no agent from now until $TAG holds the lease (reads answer 503)"
  started="$(now_us)"
  lease_release "$color" || [ $? -eq 2 ] || { state_record rolling "$TAG" "$color" aborted "$ACTIVE_VERSION" \
    "$color did not release the lease"; die "rolling: $color did not release the lease; it keeps serving"; }
  # No new request to the color (HAProxy answers 503: no other server), in-flight ones finish, then it stops;
  # back to `ready` at once so HAProxy's checks report the truth (DOWN, then UP when the new version serves).
  hap_do "set server $HAPROXY_BACKEND/$color state drain"
  lb_drain "$color"
  stop_color "$color"
  hap_do "set server $HAPROXY_BACKEND/$color state ready"
  start_color "$color" "$TAG"
  if ! verify_color "$color" || ! lease_wait_active "$color" "$LEASE_TIMEOUT"; then
    fail_color "$color"
    step "rolling: restarting $ACTIVE_VERSION on $color"
    start_color "$color" "$ACTIVE_VERSION"
    if ! { verify_color "$color" && lease_wait_active "$color" "$LEASE_TIMEOUT"; }; then
      warn "$ACTIVE_VERSION did not come back on $color either: $ENVIRONMENT has no agent"
    fi
    note_fact gap_s "$(elapsed_s "$started")"
    state_record rolling "$TAG" "$color" rolled-back "$ACTIVE_VERSION" "$TAG failed its checks; $ACTIVE_VERSION restarted"
    die "rolling: $TAG failed on $color; $ACTIVE_VERSION was started again"
  fi
  note_fact gap_s "$(elapsed_s "$started")"
  [ "$DRY_RUN" -eq 1 ] || info "gap without an agent: $(elapsed_s "$started")s"
  finish "$color"
}

main() {
  parse_args "$@"
  prepare
  case "$STRATEGY" in
    blue-green) deploy_blue_green ;;
    canary) deploy_canary ;;
    rolling) deploy_rolling ;;
  esac
}

main "$@"
