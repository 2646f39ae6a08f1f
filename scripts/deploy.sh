#!/usr/bin/env bash
# Deploy a new agent version to one environment, without dropping a request (DESIGN §7).
#
# The new version starts on the standby color, must be healthy (its /health and HAProxy's checks), and only
# then gets traffic; the old color is drained and kept warm at weight 0 for a fast rollback. A failure before
# the switch leaves traffic untouched; a failure after it sends traffic back to the old color (automatic
# rollback). Every attempt is appended to the environment's deploy history (scripts/lib/deploy/state.sh).
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
DRY_RUN=0

LIB="$ROOT/scripts/lib/deploy"
# shellcheck source=lib/deploy/common.sh
source "$LIB/common.sh"
# shellcheck source=lib/deploy/state.sh
source "$LIB/state.sh"
# shellcheck source=lib/deploy/lb.sh
source "$LIB/lb.sh"
# shellcheck source=lib/deploy/flow.sh
source "$LIB/flow.sh"

usage() {
  cat <<USAGE
usage: scripts/deploy.sh -e ENV -t TAG [-s STRATEGY] [--runtime compose|local] [--timeout S] [--force] [--dry-run]

Deploys agent version TAG to environment ENV.

  -e, --environment ENV    environment name: state file, compose project ald-agent-ENV, config/ENV.env
  -t, --tag TAG            image tag / version to deploy
  -s, --strategy NAME      blue-green | canary | rolling (DEPLOY_STRATEGY, default $STRATEGY)
                             blue-green  new version on the standby color, checks, switch, old kept warm
                             canary      like blue-green, traffic moved in steps ($CANARY_STEPS %), each gated
                                         on health and no new 5xx ($CANARY_PAUSE s per step, CANARY_PAUSE)
                             rolling     both colors replaced one after the other; no old version kept
  -r, --runtime NAME       compose | local (DEPLOY_RUNTIME, default $RUNTIME)
  -T, --timeout S          seconds a new color has to become healthy (DEPLOY_TIMEOUT, default $DEPLOY_TIMEOUT)
  -f, --force              deploy even when TAG is already the active version
  -n, --dry-run            print every step and command, change nothing (no engine or socket needed)
  -h, --help               this help

Environment: DEPLOY_STATE_DIR (default $DEPLOY_STATE_DIR), HAPROXY_SOCKET (default $HAPROXY_SOCKET),
DRAIN_TIMEOUT ($DRAIN_TIMEOUT s), POST_SWITCH_SOAK ($POST_SWITCH_SOAK s), KEEP_OLD_WARM ($KEEP_OLD_WARM; 0 stops the
old color after a blue-green switch), DEPLOY_LOCK_WAIT ($DEPLOY_LOCK_WAIT s to wait for another deploy's lock).
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
  read_active
  if [ "$TAG" = "$ACTIVE_VERSION" ] && [ "$FORCE" -eq 0 ]; then
    die "$TAG is already active on $ACTIVE_COLOR (--force deploys it again)"
  fi
  if [ "$STRATEGY" = canary ] && [ -z "$ACTIVE_COLOR" ]; then
    die "canary needs a version already serving; use --strategy blue-green first"
  fi
  NEW_COLOR="$(other_color "${ACTIVE_COLOR:-green}")"
  OLD_COLOR="$(other_color "$NEW_COLOR")"
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

# Traffic to COLOR; if it then fails, traffic goes back to FROM (when FROM served) and we exit 1.
cut_over() {
  local color="$1" from="$2"
  if [ -n "$ACTIVE_COLOR" ]; then
    switch_traffic "$color" "$from"
  else
    lb_weights "$color" 100 "$from" 0  # first deploy: nothing served before, nothing to drain
  fi
  if soak "$color"; then return 0; fi
  if [ -n "$ACTIVE_COLOR" ]; then
    step "automatic rollback: traffic back to $from"
    lb_weights "$from" 100 "$color" 0
    lb_drain "$color"
  fi
  fail_color "$color"
  state_record "$STRATEGY" "$TAG" "$color" rolled-back "$ACTIVE_VERSION" "$color failed after the switch"
  die "$TAG on $color failed after the switch; traffic is back on ${ACTIVE_COLOR:-nothing}"
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
canary_errors() {
  if [ "$DRY_RUN" -eq 1 ]; then echo 0; else lb_5xx "$NEW_COLOR"; fi
}

# Canary: traffic to the new color in CANARY_STEPS; each step gated on its health and on no new 5xx.
deploy_canary() {
  bring_up "$NEW_COLOR"
  local pct errors_before errors_after
  for pct in $CANARY_STEPS; do
    errors_before="$(canary_errors)"
    lb_weights "$NEW_COLOR" "$pct" "$OLD_COLOR" "$((100 - pct))"
    pause "$CANARY_PAUSE"
    errors_after="$(canary_errors)"
    if ! check_health "$NEW_COLOR" 3 || [ "${errors_after:-0}" -gt "${errors_before:-0}" ]; then
      warn "canary failed at $pct%: $((errors_after - errors_before)) new 5xx answer(s) from $NEW_COLOR"
      step "canary rollback: traffic back to $OLD_COLOR"
      lb_weights "$OLD_COLOR" 100 "$NEW_COLOR" 0
      lb_drain "$NEW_COLOR"
      fail_color "$NEW_COLOR"
      state_record canary "$TAG" "$NEW_COLOR" "aborted@$pct%" "$ACTIVE_VERSION" "failed at $pct% of traffic"
      die "canary of $TAG aborted at $pct%; traffic is back on $OLD_COLOR ($ACTIVE_VERSION)"
    fi
  done
  lb_drain "$OLD_COLOR"
  finish "$NEW_COLOR"
}

# Rolling (two colors): new version on the standby, switch, then the old color replaced too and traffic back.
deploy_rolling() {
  bring_up "$NEW_COLOR"
  cut_over "$NEW_COLOR" "$OLD_COLOR"
  start_color "$OLD_COLOR" "$TAG"
  if ! verify_color "$OLD_COLOR"; then
    fail_color "$OLD_COLOR"
    state_set_active "$NEW_COLOR" "$TAG"
    state_record rolling "$TAG" "$NEW_COLOR" partial "$ACTIVE_VERSION" "$OLD_COLOR failed on $TAG; $NEW_COLOR serves"
    die "rolling: $OLD_COLOR failed on $TAG; $NEW_COLOR serves $TAG alone"
  fi
  switch_traffic "$OLD_COLOR" "$NEW_COLOR"
  finish "$OLD_COLOR"
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
