#!/usr/bin/env bash
# Ask an agent whether it is healthy (docs/DESIGN.md §6), with retries. Used by operators, deploy.sh and rollback.sh.
#
# Full mode (default) reads GET /health: healthy when the answer is HTTP 200 and its "status" is one of
# HEALTH_ACCEPT ("healthy degraded": a degraded agent is up and must keep serving, see agent/http/health.py).
# --basic reads GET /health/basic: healthy when the answer is HTTP 200 (the probe HAProxy and Docker use).
# --url takes the agent's base URL (http://host:8000, the form the deployment guide uses) or its /health URL.
# Only a transient answer is retried (no answer, 5xx, or a health report saying "unhealthy"): an answer that is
# not an agent's health report at all (HTTP 200 with an HTML page, 404, ...) fails at once, with the reason.
# Exit codes: 0 healthy, 1 unhealthy (after every retry, or at once when retrying cannot help), 2 usage error.
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

  -u, --url URL        the agent's base URL or its /health URL (HEALTH_URL, default $HEALTH_URL);
                       a base URL is asked at /health (with --basic, at /health/basic)
  -r, --retries N      attempts before giving up, >= 1 (HEALTH_RETRIES, default $HEALTH_RETRIES)
  -i, --interval S     seconds between attempts (HEALTH_INTERVAL, default $HEALTH_INTERVAL)
  -b, --basic          liveness only: GET /health/basic must answer 200
  -j, --json           print one JSON object with the verdict and the last answer
  -q, --quiet          print nothing; the exit code is the verdict
      --dry-run        print the request that would be made and exit 0
  -h, --help           this help

Environment: HEALTH_TIMEOUT per request in seconds (default $HEALTH_TIMEOUT); HEALTH_ACCEPT statuses
counted as healthy in full mode (default "$HEALTH_ACCEPT").
Exit codes: 0 healthy, 1 unhealthy after N attempts (or at once when the URL answers with something that is
not a health report), 2 usage error.
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
  HEALTH_URL="$(health_url "$HEALTH_URL")"
}

# The URL to ask: a base URL (no path, or "/") means its /health; --basic turns /health into /health/basic.
health_url() {
  local url="$1" rest
  rest="${url#*://}"
  if [[ "$rest" != */* ]] || [[ "$rest" =~ ^[^/]*/$ ]]; then url="${url%/}/health"; fi
  if [ "$BASIC" -eq 1 ] && [[ "$url" == */health ]]; then url="$url/basic"; fi
  printf '%s' "$url"
}

require_tools() {
  local tool
  for tool in "$CURL" jq; do
    command -v "$tool" >/dev/null || { complain "$tool not found (apt-get install curl jq)"; exit 1; }
  done
}

# One request: sets HTTP_CODE (000 when no answer), BODY, STATUS (the JSON "status", or "") and CURL_ERROR.
probe() {
  local out errfile
  errfile="$(mktemp)"
  out="$("$CURL" -sS -o - -w '\n%{http_code}' --max-time "$HEALTH_TIMEOUT" "$HEALTH_URL" 2>"$errfile")" || true
  CURL_ERROR="$(head -n 1 "$errfile")"
  rm -f "$errfile"
  HTTP_CODE="${out##*$'\n'}"
  BODY="${out%$'\n'*}"
  [[ "$HTTP_CODE" =~ ^[0-9]{3}$ ]] || { HTTP_CODE=000; BODY=""; }
  STATUS="$(jq -r 'if type == "object" then .status // "" else "" end' <<<"$BODY" 2>/dev/null || true)"
}

# The verdict on the last probe: 0 healthy, 1 not yet (worth another attempt), 3 never (retrying cannot help).
# Sets REASON, the operator's one-line explanation of a bad verdict.
verdict() {
  REASON=""
  case "$HTTP_CODE" in
    000) REASON="no answer${CURL_ERROR:+ ($CURL_ERROR)}"; return 1 ;;
    5??) ;;
    200) ;;
    *) REASON="HTTP $HTTP_CODE: not an agent health endpoint (give the agent's base URL or its /health URL)"
       return 3 ;;
  esac
  if [ -z "$STATUS" ]; then
    if [ "$HTTP_CODE" = 200 ]; then
      REASON="HTTP 200 without a JSON \"status\": not an agent health report (give the agent's base URL or its"
      REASON="$REASON /health URL)"
      return 3
    fi
    REASON="HTTP $HTTP_CODE"
    return 1
  fi
  if [ "$HTTP_CODE" = 200 ]; then
    [ "$BASIC" -eq 1 ] && return 0
    [[ " $HEALTH_ACCEPT " == *" $STATUS "* ]] && return 0
  fi
  REASON="HTTP $HTTP_CODE, status $STATUS$(reasons_suffix)"
  return 1
}

# " (reason; reason)" from the report's "reasons" list, or nothing.
reasons_suffix() {
  local reasons
  reasons="$(jq -r 'if type == "object" and (.reasons | type) == "array" and (.reasons | length) > 0
                    then .reasons | map(tostring) | join("; ") else "" end' <<<"$BODY" 2>/dev/null || true)"
  [ -z "$reasons" ] || printf ' (%s)' "$reasons"
}

print_json() {
  local healthy="$1" attempts="$2" body_json
  body_json="$(jq -c . <<<"$BODY" 2>/dev/null)" || body_json=null
  [ -n "$body_json" ] || body_json=null
  jq -nc --arg url "$HEALTH_URL" --argjson healthy "$healthy" --argjson attempts "$attempts" \
    --arg mode "$([ "$BASIC" -eq 1 ] && echo basic || echo full)" --argjson code "$((10#$HTTP_CODE))" \
    --arg status "$STATUS" --arg reason "$REASON" --argjson body "$body_json" \
    '{url: $url, mode: $mode, healthy: $healthy, attempts: $attempts, http_code: $code,
      status: (if $status == "" then null else $status end),
      reason: (if $reason == "" then null else $reason end), body: $body}'
}

check() {
  local attempt=1 rc
  while :; do
    say "==> GET $HEALTH_URL (attempt $attempt/$HEALTH_RETRIES)"
    probe
    rc=0
    verdict || rc=$?
    if [ "$rc" -eq 0 ]; then
      say "healthy: HTTP $HTTP_CODE${STATUS:+, status $STATUS}"
      if [ "$OUTPUT" = json ]; then print_json true "$attempt"; fi
      return 0
    fi
    if [ "$rc" -eq 3 ]; then
      complain "unhealthy at once, retrying cannot help: $REASON from $HEALTH_URL"
      if [ "$OUTPUT" = json ]; then print_json false "$attempt"; fi
      return 1
    fi
    if [ "$attempt" -ge "$HEALTH_RETRIES" ]; then break; fi
    attempt=$((attempt + 1))
    sleep "$HEALTH_INTERVAL"
  done
  complain "unhealthy after $HEALTH_RETRIES attempt(s): $REASON from $HEALTH_URL"
  if [ "$OUTPUT" = json ]; then print_json false "$attempt"; fi
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
