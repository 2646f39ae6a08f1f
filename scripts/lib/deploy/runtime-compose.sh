# shellcheck shell=bash
# Compose runtime: the two colors are services of docker-compose.prod.yml. Sourced: functions only.
# The interface every runtime implements (docs/DESIGN.md §7 "Runtime interface"), used by flow.sh:
#   rt_prepare                 make sure the shared services (HAProxy, Prometheus, Alertmanager, Grafana) run
#   rt_start COLOR VERSION     (re)start COLOR on VERSION
#   rt_stop COLOR              stop COLOR (SIGTERM: safe state, spool flush; then the grace period)
#   rt_wait_ready COLOR S      until the runtime reports COLOR ready, at most S seconds (1 = not ready)
#   rt_health_url COLOR        the URL of COLOR's /health as the host reaches it
#   rt_diagnose COLOR          print what helps understand a failure (to stderr)

DOCKER="${DOCKER:-docker}"
COMPOSE_FILE="${COMPOSE_FILE:-$ROOT/docker-compose.prod.yml}"
AGENT_BLUE_PORT="${AGENT_BLUE_PORT:-8001}"
AGENT_GREEN_PORT="${AGENT_GREEN_PORT:-8002}"
HAPROXY_RUN_DIR="${HAPROXY_RUN_DIR:-$(dirname "$HAPROXY_SOCKET")}"
declare -gA RT_TAG=()  # -g: this file is sourced from inside load_runtime()

rt_env_file() { printf '%s' "${ENV_FILE:-$ROOT/config/$ENVIRONMENT.env}"; }
rt_project() { printf '%s' "${COMPOSE_PROJECT:-ald-agent-$ENVIRONMENT}"; }

# Image tags per color come from the state file; compose needs both even to act on one service, so a color
# that never ran borrows the other's tag (it is not started by that call).
rt_load_tags() {
  local color
  for color in "${COLORS[@]}"; do RT_TAG[$color]="$(state_get ".colors.$color.version")"; done
}

rt_tag() {
  local color="$1" other
  other="$(other_color "$color")"
  printf '%s' "${RT_TAG[$color]:-${RT_TAG[$other]:-none}}"
}

# compose ARGS...: docker compose for this environment, through `run` (printed in dry-run).
compose() {
  run env "AGENT_TAG_BLUE=$(rt_tag blue)" "AGENT_TAG_GREEN=$(rt_tag green)" \
    "$DOCKER" compose -p "$(rt_project)" --env-file "$(rt_env_file)" -f "$COMPOSE_FILE" "$@"
}

# The same for read-only queries; callers skip them in dry-run, so a dry run needs no Docker engine.
compose_query() {
  AGENT_TAG_BLUE="$(rt_tag blue)" AGENT_TAG_GREEN="$(rt_tag green)" \
    "$DOCKER" compose -p "$(rt_project)" --env-file "$(rt_env_file)" -f "$COMPOSE_FILE" "$@"
}

rt_check() {
  local env_file
  env_file="$(rt_env_file)"
  if [ ! -f "$env_file" ]; then
    [ "$DRY_RUN" -eq 1 ] || die "no environment file $env_file (copy config/production.env.example)"
    warn "no environment file $env_file (a real run needs it)"
  fi
  [ "$DRY_RUN" -eq 1 ] || require_tools "$DOCKER"
  rt_load_tags
}

rt_prepare() {
  step "shared services: haproxy, prometheus, alertmanager, blackbox, grafana (compose project $(rt_project))"
  run mkdir -p "$HAPROXY_RUN_DIR"
  compose up -d --no-deps haproxy prometheus alertmanager blackbox grafana
}

rt_start() {
  local color="$1" version="$2"
  RT_TAG[$color]="$version"
  case "${IMAGE_SOURCE:-local}" in
    build) step "building the image of $color: $version (this checkout)"; compose build "ald-control-$color" ;;
    pull) step "pulling the image of $color: $version"; compose pull "ald-control-$color" ;;
  esac
  step "starting $color on $version"
  compose up -d --no-deps --force-recreate "ald-control-$color"
}

rt_stop() {
  local color="$1"
  step "stopping $color"
  compose stop "ald-control-$color"
}

rt_wait_ready() {
  local color="$1" timeout="$2" deadline health
  step "waiting for the $color container to be healthy, up to ${timeout}s"
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '    + poll: %s\n' "$(quoted "$DOCKER" compose -p "$(rt_project)" ps --format json "ald-control-$color")"
    return 0
  fi
  deadline=$((SECONDS + timeout))
  while :; do
    # `ps --format json` prints one object per line (compose ≥ 2.21) or one array (older): slurp handles both.
    health="$(compose_query ps --format json "ald-control-$color" 2>/dev/null \
      | jq -rs 'flatten | map(select(.Service == $s)) | .[0] // {} | if .State == "running" then (.Health // "") | if . == "" then "healthy" else . end else (.State // "absent") end' \
          --arg s "ald-control-$color" 2>/dev/null)" || health=""
    case "$health" in
      healthy) return 0 ;;
      unhealthy|exited|dead|absent) warn "$color container is $health"; return 1 ;;
    esac
    if [ "$SECONDS" -ge "$deadline" ]; then warn "$color container still '${health:-unknown}' after ${timeout}s"; return 1; fi
    sleep 1
  done
}

rt_health_url() {
  case "$1" in
    blue) printf 'http://127.0.0.1:%s/health' "$AGENT_BLUE_PORT" ;;
    green) printf 'http://127.0.0.1:%s/health' "$AGENT_GREEN_PORT" ;;
  esac
}

rt_diagnose() {
  local color="$1"
  [ "$DRY_RUN" -eq 1 ] && return 0
  printf -- '--- last log lines of ald-control-%s ---\n' "$color" >&2
  compose_query logs --no-color --tail 50 "ald-control-$color" >&2 2>&1 || true
}
