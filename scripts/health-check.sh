#!/usr/bin/env bash
# Ask an agent whether it is healthy (docs/DESIGN.md §6), with retries. Used by operators, deploy.sh and rollback.sh.
#
# Full mode (default) reads GET /health: healthy when the answer is HTTP 200 and its "status" is one of
# HEALTH_ACCEPT ("healthy degraded": a degraded agent is up and must keep serving, see agent/http/health.py).
# --basic reads GET /health/basic: healthy when the answer is HTTP 200 (the probe HAProxy and Docker use).
# Exit codes: 0 healthy, 1 unhealthy after every retry, 2 usage error.
set -euo pipefail

HEALTH_URL="${HEALTH_URL:-http://127.0.0.1:8000/health}"
HEALTH_RETRIES="${HEALTH_RETRIES:-3}"
HEALTH_INTERVAL="${HEALTH_INTERVAL:-2}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-3}"
HEALTH_ACCEPT="${HEALTH_ACCEPT:-healthy degraded}"
CURL="${CURL:-curl}"

usage() {
  cat <<USAGE
usage: scripts/health-check.sh [-u URL] [-r N] [-i S] [--basic] [--json | --quiet] [--dry-run]

Checks an agent's health endpoint, retrying until healthy or out of attempts.

  -u, --url URL        the agent's /health URL (HEALTH_URL, default $HEALTH_URL);
                       with --basic, a URL ending in /health is asked at /health/basic
  -r, --retries N      attempts before giving up, >= 1 (HEALTH_RETRIES, default $HEALTH_RETRIES)
  -i, --interval S     seconds between attempts (HEALTH_INTERVAL, default $HEALTH_INTERVAL)
  -b, --basic          liveness only: GET /health/basic must answer 200
  -j, --json           print one JSON object with the verdict and the last answer
  -q, --quiet          print nothing; the exit code is the verdict
      --dry-run        print the request that would be made and exit 0
  -h, --help           this help

Environment: HEALTH_TIMEOUT per request in seconds (default $HEALTH_TIMEOUT); HEALTH_ACCEPT statuses
counted as healthy in full mode (default "$HEALTH_ACCEPT").
Exit codes: 0 healthy, 1 unhealthy after N attempts, 2 usage error.
USAGE
}

BASIC=0
OUTPUT=text
DRY_RUN=0

usage_error() { printf 'error: %s\n' "$*" >&2; usage >&2; exit 2; }
value() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi
  printf '%s' "$2"
}
say() { if [ "$OUTPUT" = text ]; then printf '%s\n' "$*"; fi; }
complain() { if [ "$OUTPUT" = text ]; then printf 'error: %s\n' "$*" >&2; fi; }

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      -u|--url) HEALTH_URL="$(value "$@")"; shift 2 ;;
      -r|--retries) HEALTH_RETRIES="$(value "$@")"; shift 2 ;;
      -i|--interval) HEALTH_INTERVAL="$(value "$@")"; shift 2 ;;
      -b|--basic) BASIC=1; shift ;;
      -j|--json) [ "$OUTPUT" != quiet ] || usage_error "--json and --quiet exclude each other"; OUTPUT=json; shift ;;
      -q|--quiet) [ "$OUTPUT" != json ] || usage_error "--json and --quiet exclude each other"; OUTPUT=quiet; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  [[ "$HEALTH_RETRIES" =~ ^[1-9][0-9]*$ ]] || usage_error "--retries must be a whole number >= 1"
  [[ "$HEALTH_INTERVAL" =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "--interval must be a number of seconds"
  [[ "$HEALTH_TIMEOUT" =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "HEALTH_TIMEOUT must be a number of seconds"
  [[ "$HEALTH_URL" =~ ^https?:// ]] || usage_error "--url must start with http:// or https://"
  if [ "$BASIC" -eq 1 ] && [[ "$HEALTH_URL" == */health ]]; then HEALTH_URL="$HEALTH_URL/basic"; fi
}

require_tools() {
  local tool
  for tool in "$CURL" jq; do
    command -v "$tool" >/dev/null || { complain "$tool not found (apt-get install curl jq)"; exit 1; }
  done
}

# One request: sets HTTP_CODE (000 when no answer), BODY and STATUS (the JSON "status", or "").
probe() {
  local out
  out="$("$CURL" -sS -o - -w '\n%{http_code}' --max-time "$HEALTH_TIMEOUT" "$HEALTH_URL" 2>/dev/null)" || true
  HTTP_CODE="${out##*$'\n'}"
  BODY="${out%$'\n'*}"
  [[ "$HTTP_CODE" =~ ^[0-9]{3}$ ]] || { HTTP_CODE=000; BODY=""; }
  STATUS="$(jq -r 'if type == "object" then .status // "" else "" end' <<<"$BODY" 2>/dev/null || true)"
}

# The verdict on the last probe: 0 healthy, 1 not.
verdict() {
  [ "$HTTP_CODE" = 200 ] || return 1
  [ "$BASIC" -eq 1 ] && return 0
  [[ " $HEALTH_ACCEPT " == *" $STATUS "* ]]
}

print_json() {
  local healthy="$1" attempts="$2" body_json
  body_json="$(jq -c . <<<"$BODY" 2>/dev/null)" || body_json=null
  [ -n "$body_json" ] || body_json=null
  jq -nc --arg url "$HEALTH_URL" --argjson healthy "$healthy" --argjson attempts "$attempts" \
    --arg mode "$([ "$BASIC" -eq 1 ] && echo basic || echo full)" --argjson code "$((10#$HTTP_CODE))" \
    --arg status "$STATUS" --argjson body "$body_json" \
    '{url: $url, mode: $mode, healthy: $healthy, attempts: $attempts, http_code: $code,
      status: (if $status == "" then null else $status end), body: $body}'
}

check() {
  local attempt=1
  while :; do
    say "==> GET $HEALTH_URL (attempt $attempt/$HEALTH_RETRIES)"
    probe
    if verdict; then
      say "healthy: HTTP $HTTP_CODE${STATUS:+, status $STATUS}"
      [ "$OUTPUT" = json ] && print_json true "$attempt"
      return 0
    fi
    if [ "$attempt" -ge "$HEALTH_RETRIES" ]; then break; fi
    attempt=$((attempt + 1))
    sleep "$HEALTH_INTERVAL"
  done
  complain "unhealthy after $HEALTH_RETRIES attempt(s): HTTP $HTTP_CODE${STATUS:+, status $STATUS} from $HEALTH_URL"
  [ "$OUTPUT" = json ] && print_json false "$attempt"
  return 1
}

main() {
  parse_args "$@"
  if [ "$DRY_RUN" -eq 1 ]; then
    say "==> would GET $HEALTH_URL up to $HEALTH_RETRIES time(s), every ${HEALTH_INTERVAL}s"
    return 0
  fi
  require_tools
  check
}

main "$@"
