#!/usr/bin/env bash
# Put the previous agent version back in service for one environment (docs/DESIGN.md §7).
#
#   --method version  (default) back to --version V, or to the last good version in the deploy history. When
#                     the warm standby already runs it and is healthy, this is a weight flip (well under a
#                     second); otherwise V starts on the standby color first, checked as in a deploy.
#   --method manual   flip traffic to the other color as it is; it must be running, healthy and UP.
# Either way the PLC lease moves first (scripts/lib/deploy/lease.sh): the current color hands it over (after a
# running recipe, or at once with --force-handover), the target color is activated, then traffic flips.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENVIRONMENT="${DEPLOY_ENVIRONMENT:-}"
METHOD="${ROLLBACK_METHOD:-version}"
VERSION=""
RUNTIME="${DEPLOY_RUNTIME:-compose}"
DEPLOY_TIMEOUT="${DEPLOY_TIMEOUT:-120}"
ASSUME_YES=0
FORCE_HANDOVER="${FORCE_HANDOVER:-0}"
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
usage: scripts/rollback.sh -e ENV [-m version [-V VERSION] | -m manual] [--yes] [--runtime R] [--timeout S]
                          [--force-handover] [--dry-run]

Sends traffic back to the previous agent version of environment ENV.

  -e, --environment ENV    environment name (as for deploy.sh)
  -m, --method NAME        version | manual (ROLLBACK_METHOD, default $METHOD)
                             version  back to VERSION, default: the last good version in the deploy history
                             manual   flip to the other color as it runs now
  -V, --version VERSION    the version to go back to (method version only)
  -y, --yes                do not ask for confirmation (needed without a terminal, e.g. in CI)
  -r, --runtime NAME       compose | local (DEPLOY_RUNTIME, default $RUNTIME)
  -T, --timeout S          seconds a restarted color has to become healthy, and the current one to finish a
                           running recipe and release the lease (DEPLOY_TIMEOUT, default $DEPLOY_TIMEOUT)
  -F, --force-handover     do not wait for a running recipe: the current color stops it into its safe state
  -n, --dry-run            print every step and command, change nothing
  -h, --help               this help

Environment: DEPLOY_STATE_DIR (default $DEPLOY_STATE_DIR), HAPROXY_SOCKET (default $HAPROXY_SOCKET).
Exit codes: 0 rolled back, 1 failed (traffic left where it was), 2 usage error.
USAGE
}

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      -e|--environment) ENVIRONMENT="$(value "$@")"; shift 2 ;;
      -m|--method) METHOD="$(value "$@")"; shift 2 ;;
      -V|--version) VERSION="$(value "$@")"; shift 2 ;;
      -y|--yes) ASSUME_YES=1; shift ;;
      -F|--force-handover) FORCE_HANDOVER=1; shift ;;
      -r|--runtime) RUNTIME="$(value "$@")"; shift 2 ;;
      -T|--timeout) DEPLOY_TIMEOUT="$(value "$@")"; shift 2 ;;
      -n|--dry-run) DRY_RUN=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  [ -n "$ENVIRONMENT" ] || usage_error "--environment is required"
  valid_environment "$ENVIRONMENT" || usage_error "bad environment name '$ENVIRONMENT' ([a-z][a-z0-9_-]*)"
  case "$METHOD" in
    version) [ -z "$VERSION" ] || valid_tag "$VERSION" || usage_error "bad version '$VERSION'" ;;
    manual) [ -z "$VERSION" ] || usage_error "--version goes with --method version" ;;
    *) usage_error "unknown method '$METHOD' (version or manual)" ;;
  esac
  case "$RUNTIME" in compose|local) ;; *) usage_error "unknown runtime '$RUNTIME'" ;; esac
  [[ "$DEPLOY_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout must be a whole number of seconds"
}

prepare() {
  local mode=""
  [ "$DRY_RUN" -eq 0 ] || mode=" (dry run)"
  step "rollback of $ENVIRONMENT: method $METHOD, runtime $RUNTIME$mode"
  load_runtime "$RUNTIME"
  [ "$DRY_RUN" -eq 1 ] || require_tools jq socat flock curl
  state_lock
  rt_check
  admin_token_load
  read_active
  [ -n "$ACTIVE_COLOR" ] || die "nothing to roll back: '$ENVIRONMENT' has no active color in $(state_path)"
  STANDBY_COLOR="$(other_color "$ACTIVE_COLOR")"
  STANDBY_VERSION="$(state_get ".colors.$STANDBY_COLOR.version")"
}

# The version to go back to, and whether the warm standby already runs it.
choose_target() {
  if [ "$METHOD" = manual ]; then
    [ -n "$STANDBY_VERSION" ] || die "manual rollback: $STANDBY_COLOR is not running (state file)"
    TARGET="$STANDBY_VERSION"
    return 0
  fi
  TARGET="${VERSION:-$(state_last_good_version)}"
  [ -n "$TARGET" ] || die "no earlier good version in the history of '$ENVIRONMENT'; pass --version"
  [ "$TARGET" != "$ACTIVE_VERSION" ] || die "$TARGET is already active on $ACTIVE_COLOR"
}

rollback() {
  local strategy="rollback-$METHOD"
  step "plan: $ACTIVE_COLOR ($ACTIVE_VERSION) → $STANDBY_COLOR ($TARGET)"
  confirm "Roll $ENVIRONMENT back from $ACTIVE_VERSION to $TARGET?"
  lb_require_socket
  if [ "$STANDBY_VERSION" = "$TARGET" ]; then
    info "$STANDBY_COLOR already runs $TARGET: checking it, then flipping"
    if ! check_health "$STANDBY_COLOR" 3 || ! lb_wait_up "$STANDBY_COLOR" 5; then
      if [ "$METHOD" = manual ]; then
        state_record "$strategy" "$TARGET" "$STANDBY_COLOR" aborted "$ACTIVE_VERSION" "standby not healthy"
        die "$STANDBY_COLOR is not healthy; traffic stays on $ACTIVE_COLOR"
      fi
      restart_standby
    fi
  else
    restart_standby
  fi
  if ! switch_traffic "$STANDBY_COLOR" "$ACTIVE_COLOR"; then
    state_record "$strategy" "$TARGET" "$STANDBY_COLOR" aborted "$ACTIVE_VERSION" "the lease did not move"
    die "the lease did not move to $STANDBY_COLOR; $ACTIVE_COLOR keeps lease and traffic (--force-handover?)"
  fi
  state_set_active "$STANDBY_COLOR" "$TARGET"
  state_record "$strategy" "$TARGET" "$STANDBY_COLOR" success "$ACTIVE_VERSION"
  step "done: $ENVIRONMENT serves $TARGET from $STANDBY_COLOR ($ACTIVE_VERSION stays warm on $ACTIVE_COLOR)"
}

restart_standby() {
  start_color "$STANDBY_COLOR" "$TARGET"
  if ! verify_color "$STANDBY_COLOR"; then
    fail_color "$STANDBY_COLOR"
    state_record "rollback-$METHOD" "$TARGET" "$STANDBY_COLOR" aborted "$ACTIVE_VERSION" "$TARGET failed its checks"
    die "$TARGET on $STANDBY_COLOR failed its checks; traffic stays on $ACTIVE_COLOR ($ACTIVE_VERSION)"
  fi
}

main() {
  parse_args "$@"
  prepare
  choose_target
  rollback
}

main "$@"
