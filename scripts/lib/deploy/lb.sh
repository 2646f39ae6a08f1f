# shellcheck shell=bash
# HAProxy runtime API (docs/DESIGN.md §7 "Traffic switch"): the traffic switch shared by every runtime and strategy.
# Sourced: functions only; needs common.sh and socat. Backend and server names match haproxy/haproxy.cfg.
#
# Rules, each measured: the standby stays in the normal admin state at weight 0 and is health-checked all the
# time; before traffic moves, the new color must be UP with check L7OK; weights change in ONE runtime-API line
# that raises the new weight first (no instant with every weight at 0, which HAProxy answers with 503); the
# old color is drained to 0 current sessions before it may stop; `show servers state` is saved after every
# change so a reload or restart keeps the active color.

HAPROXY_SOCKET="${HAPROXY_SOCKET:-$ROOT/run/haproxy/admin.sock}"
HAPROXY_STATE_FILE="${HAPROXY_STATE_FILE:-$(dirname "$HAPROXY_SOCKET")/servers.state}"
HAPROXY_BACKEND="${HAPROXY_BACKEND:-be_agent}"
LB_POLL_INTERVAL="${LB_POLL_INTERVAL:-0.25}"
DRAIN_TIMEOUT="${DRAIN_TIMEOUT:-30}"

# A runtime API command that only reads; its answer on stdout.
hap() {
  printf '%s\n' "$1" | socat -t 2 stdio "unix-connect:$HAPROXY_SOCKET"
}

# A runtime API command that changes something; printed instead in dry-run. HAProxy answers an empty line
# on success, so any other text is an error.
hap_do() {
  local answer
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '    + hap: %s\n' "$1"
    return 0
  fi
  answer="$(hap "$1")" || die "HAProxy runtime API unreachable at $HAPROXY_SOCKET"
  answer="$(printf '%s' "$answer" | tr -d '\n')"
  [ -z "$answer" ] || die "HAProxy refused '$1': $answer"
}

# lb_field COLOR COLUMN: one column of the color's row in `show stat` (status, weight, scur, check_status,
# hrsp_5xx, ...), found by header name.
lb_field() {
  local color="$1" column="$2"
  hap "show stat" | awk -F, -v px="$HAPROXY_BACKEND" -v sv="$color" -v col="$column" '
    NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
    $1 == px && $2 == sv && c { print $c; exit }'
}

lb_require_socket() {
  [ "$DRY_RUN" -eq 1 ] && return 0
  [ -S "$HAPROXY_SOCKET" ] || die "no HAProxy runtime API socket at $HAPROXY_SOCKET (HAPROXY_SOCKET)"
  hap "show info" >/dev/null || die "HAProxy runtime API unreachable at $HAPROXY_SOCKET"
}

# lb_wait_up COLOR TIMEOUT_S: until HAProxy's own checks see the color UP with L7OK.
lb_wait_up() {
  local color="$1" timeout="$2" deadline status check
  step "waiting for HAProxy to see $color UP (L7OK), up to ${timeout}s"
  [ "$DRY_RUN" -eq 1 ] && { info "+ poll: show stat → $HAPROXY_BACKEND/$color status UP, check_status L7OK"; return 0; }
  deadline=$((SECONDS + timeout))
  while :; do
    status="$(lb_field "$color" status)"
    check="$(lb_field "$color" check_status)"
    if [ "$status" = UP ] && [ "$check" = L7OK ]; then return 0; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      warn "HAProxy sees $color as '${status:-?}' (check ${check:-?}) after ${timeout}s"
      return 1
    fi
    sleep "$LB_POLL_INTERVAL"
  done
}

# lb_weights RAISE W_RAISE LOWER W_LOWER: one line, the rising weight first.
lb_weights() {
  local raise="$1" w_raise="$2" lower="$3" w_lower="$4"
  step "weights: $raise=$w_raise, $lower=$w_lower"
  hap_do "set weight $HAPROXY_BACKEND/$raise $w_raise; set weight $HAPROXY_BACKEND/$lower $w_lower"
  lb_save
}

# lb_drain COLOR: wait until no session is left on the color (it has weight 0), then cut what remains.
lb_drain() {
  local color="$1" deadline scur
  step "draining $color (current sessions to 0, up to ${DRAIN_TIMEOUT}s)"
  [ "$DRY_RUN" -eq 1 ] && { info "+ poll: show stat → $HAPROXY_BACKEND/$color scur 0"; return 0; }
  deadline=$((SECONDS + DRAIN_TIMEOUT))
  while :; do
    scur="$(lb_field "$color" scur)"
    [ "${scur:-0}" = 0 ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      warn "$color still has $scur session(s) after ${DRAIN_TIMEOUT}s: shutting them down"
      hap_do "shutdown sessions server $HAPROXY_BACKEND/$color"
      return 0
    fi
    sleep "$LB_POLL_INTERVAL"
  done
}

# Save the servers' runtime state where haproxy.cfg's server-state-file loads it at the next start.
lb_save() {
  local tmp
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '    + hap: show servers state > %s\n' "$HAPROXY_STATE_FILE"
    return 0
  fi
  tmp="$(mktemp "$HAPROXY_STATE_FILE.XXXXXX")" || die "cannot write next to $HAPROXY_STATE_FILE"
  if hap "show servers state" >"$tmp"; then
    chmod 644 "$tmp"
    mv "$tmp" "$HAPROXY_STATE_FILE"
  else
    rm -f "$tmp"
    warn "could not save HAProxy server state to $HAPROXY_STATE_FILE"
  fi
}

# The 5xx answers HAProxy counted for a color since start (the canary gate compares two readings).
lb_5xx() { lb_field "$1" hrsp_5xx; }
