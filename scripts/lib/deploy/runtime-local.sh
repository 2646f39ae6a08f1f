# shellcheck shell=bash
# Local runtime: each color is a `python -m agent run` process on loopback, HAProxy a real process started from
# haproxy/haproxy.cfg (docs/DESIGN.md §7 "Runtime interface"). Sourced: functions only. Same interface as runtime-compose.sh:
#   rt_check, rt_prepare, rt_start COLOR VERSION, rt_stop COLOR, rt_wait_ready COLOR S, rt_health_url COLOR,
#   rt_diagnose COLOR.
#
# A version is a release directory, $LOCAL_RELEASES_DIR/<version>/ (production layout:
# /opt/ald-agent/releases/<version>/), holding
#   venv/bin/python   the interpreter of that release's venv (it has that version of ald-agent installed);
#                     `venv` may be a symlink, e.g. to the checkout's .venv, so two tags can run the same code
#   release.env       optional KEY=VALUE lines applied on top of the environment file for that release only
#                     (a setting a release needs; the tests also use it to make a release that cannot start
#                     or cannot reach its PLC)
# Each color gets the environment file (ENV_FILE, default config/<environment>.env; KEY=VALUE lines, never
# evaluated by a shell, as Docker's env_file), then release.env, then its own AGENT_COLOR, HTTP_PORT
# (AGENT_BLUE_PORT / AGENT_GREEN_PORT) and SPOOL_PATH ($LOCAL_RUN_DIR/<color>/spool.sqlite: a color keeps its
# spool across versions, so nothing it could not ship is stranded). Nothing else of the caller's environment
# leaks in. Logs go to $LOCAL_RUN_DIR/<color>/agent.log, the process id to .../agent.pid and the state file.

LOCAL_RELEASES_DIR="${LOCAL_RELEASES_DIR:-/opt/ald-agent/releases}"
LOCAL_RUN_DIR="${LOCAL_RUN_DIR:-$DEPLOY_STATE_DIR/$ENVIRONMENT.local}"
LOCAL_STOP_TIMEOUT="${LOCAL_STOP_TIMEOUT:-20}"
AGENT_BLUE_PORT="${AGENT_BLUE_PORT:-8001}"
AGENT_GREEN_PORT="${AGENT_GREEN_PORT:-8002}"
HAPROXY_CONFIG="${HAPROXY_CONFIG:-$ROOT/haproxy/haproxy.cfg}"
HAPROXY_HTTP_PORT="${HAPROXY_HTTP_PORT:-8000}"
HAPROXY_STATS_PORT="${HAPROXY_STATS_PORT:-8404}"
HAPROXY_HTTPS_PORT="${HAPROXY_HTTPS_PORT:-8443}"

rt_env_file() { printf '%s' "${ENV_FILE:-$ROOT/config/$ENVIRONMENT.env}"; }
rt_port() {
  case "$1" in
    blue) printf '%s' "$AGENT_BLUE_PORT" ;;
    green) printf '%s' "$AGENT_GREEN_PORT" ;;
  esac
}
rt_dir() { printf '%s/%s' "$LOCAL_RUN_DIR" "$1"; }
rt_release() { printf '%s/%s' "$LOCAL_RELEASES_DIR" "$1"; }

# rt_pid COLOR: the pid of COLOR's agent when it is alive and really ours (its command line runs `agent run`;
# a stale pid file whose number was reused by another process is ignored), else nothing.
rt_pid() {
  local file pid
  file="$(rt_dir "$1")/agent.pid"
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- '-m agent run'; then
    printf '%s' "$pid"
  fi
}

rt_check() {
  local env_file
  env_file="$(rt_env_file)"
  if [ ! -f "$env_file" ]; then
    [ "$DRY_RUN" -eq 1 ] || die "no environment file $env_file (ENV_FILE; see docs/RUNBOOK.md, local runtime)"
    warn "no environment file $env_file (a real run needs it)"
  fi
  [ "$DRY_RUN" -eq 1 ] || require_tools haproxy curl setsid
}

# KEY=VALUE lines of a file into the array named $2 (comments, blanks and anything else skipped).
rt_read_env() {
  local file="$1" line
  local -n into="$2"
  [ -f "$file" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    [[ "$line" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] && into+=("$line")
  done <"$file"
}

# HAProxy runs already when its runtime API answers; otherwise start it in the background from haproxy.cfg with
# loopback addresses, the runtime's socket and state file (weights saved by lb_save survive a restart), and a
# self-signed certificate made once in the run directory.
rt_prepare() {
  step "HAProxy on 127.0.0.1:$HAPROXY_HTTP_PORT → blue :$AGENT_BLUE_PORT, green :$AGENT_GREEN_PORT"
  if [ "$DRY_RUN" -eq 0 ] && [ -S "$HAPROXY_SOCKET" ] && hap "show info" >/dev/null 2>&1; then
    info "HAProxy already runs (runtime API at $HAPROXY_SOCKET)"
    return 0
  fi
  local certs="$LOCAL_RUN_DIR/certs"
  run mkdir -p "$LOCAL_RUN_DIR" "$(dirname "$HAPROXY_SOCKET")"
  if [ ! -f "$certs/ald-agent.pem" ]; then run "$ROOT/haproxy/make-selfsigned-cert.sh" --out "$certs"; fi
  local hap_env=(HAPROXY_BIND_ADDR=127.0.0.1 "HAPROXY_HTTP_PORT=$HAPROXY_HTTP_PORT"
                 "HAPROXY_HTTPS_PORT=$HAPROXY_HTTPS_PORT" "HAPROXY_STATS_PORT=$HAPROXY_STATS_PORT"
                 "HAPROXY_BLUE_ADDR=127.0.0.1:$AGENT_BLUE_PORT" "HAPROXY_GREEN_ADDR=127.0.0.1:$AGENT_GREEN_PORT"
                 "HAPROXY_SOCKET=$HAPROXY_SOCKET" "HAPROXY_STATE_FILE=$HAPROXY_STATE_FILE"
                 "HAPROXY_CERT=$certs/ald-agent.pem" "HAPROXY_CHECK_INTER=${HAPROXY_CHECK_INTER:-500ms}")
  run env "${hap_env[@]}" haproxy -c -q -f "$HAPROXY_CONFIG"
  run env "${hap_env[@]}" haproxy -D -p "$LOCAL_RUN_DIR/haproxy.pid" -f "$HAPROXY_CONFIG" 9>&-  # not the lock fd
  [ "$DRY_RUN" -eq 1 ] && return 0
  local deadline=$((SECONDS + 10))
  until [ -S "$HAPROXY_SOCKET" ] && hap "show info" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "HAProxy did not open $HAPROXY_SOCKET within 10s"
    sleep 0.1
  done
}

# rt_start COLOR VERSION: (re)start COLOR on the release VERSION, detached from this script (setsid).
rt_start() {
  local color="$1" version="$2" release dir python port pid
  release="$(rt_release "$version")"
  dir="$(rt_dir "$color")"
  python="$release/venv/bin/python"
  port="$(rt_port "$color")"
  step "starting $color on $version (release $release, http :$port)"
  if [ "$DRY_RUN" -eq 0 ]; then
    [ -x "$python" ] || die "no release '$version': $python is missing (LOCAL_RELEASES_DIR=$LOCAL_RELEASES_DIR)"
    if [ -n "$(rt_pid "$color")" ]; then rt_stop "$color"; fi
  fi
  local agent_env=("PATH=/usr/local/bin:/usr/bin:/bin" "HOME=${HOME:-/}")
  rt_read_env "$(rt_env_file)" agent_env
  rt_read_env "$release/release.env" agent_env
  agent_env+=("AGENT_COLOR=$color" "HTTP_PORT=$port" "SPOOL_PATH=$dir/spool.sqlite" "AGENT_VERSION=$version")
  run mkdir -p "$dir"
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '    + cd %s && setsid env -i <%s env lines> %s -m agent run >>%s 2>&1 &\n' \
      "$release" "$(rt_env_file)" "$python" "$dir/agent.log"
    return 0
  fi
  printf '\n=== %s: %s on %s\n' "$(utc_now)" "$color" "$version" >>"$dir/agent.log"
  # 9>&-: the deploy lock's descriptor (state.sh) must not live on in the agent, or the lock would too.
  (cd "$release" && exec setsid env -i "${agent_env[@]}" "$python" -m agent run </dev/null >>"$dir/agent.log" 2>&1 9>&-) &
  pid=$!
  printf '%s\n' "$pid" >"$dir/agent.pid"
  # shellcheck disable=SC2034  # read by state_set_color (state.sh), which flow.sh calls next
  RT_COLOR_INFO="$(jq -nc --argjson pid "$pid" --argjson port "$port" '{pid: $pid, port: $port}')"
  info "pid $pid, log $dir/agent.log"
}

# rt_stop COLOR: SIGTERM (the agent stops intake, brings a run to its safe state, flushes its spool, releases
# the lease), then SIGKILL after LOCAL_STOP_TIMEOUT seconds.
rt_stop() {
  local color="$1" pid deadline
  step "stopping $color"
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '    + kill -TERM <pid in %s>; after %ss kill -KILL\n' "$(rt_dir "$color")/agent.pid" "$LOCAL_STOP_TIMEOUT"
    return 0
  fi
  pid="$(rt_pid "$color")"
  if [ -z "$pid" ]; then info "$color is not running"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + LOCAL_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      warn "$color (pid $pid) still runs after ${LOCAL_STOP_TIMEOUT}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "$(rt_dir "$color")/agent.pid"
}

# rt_wait_ready COLOR S: the process is alive and its /health/basic answers 200 (it serves); 1 as soon as the
# process exits (a release that cannot start fails in a second, not after the timeout).
rt_wait_ready() {
  local color="$1" timeout="$2" deadline url
  url="$(rt_health_url "$color")/basic"
  step "waiting for the $color process to serve $url, up to ${timeout}s"
  [ "$DRY_RUN" -eq 1 ] && { info "+ poll: process alive and GET $url → 200"; return 0; }
  deadline=$((SECONDS + timeout))
  while :; do
    if [ -z "$(rt_pid "$color")" ]; then warn "the $color process exited"; return 1; fi
    if curl -sf -o /dev/null --max-time 2 "$url"; then return 0; fi
    if [ "$SECONDS" -ge "$deadline" ]; then warn "$color does not serve after ${timeout}s"; return 1; fi
    sleep 0.2
  done
}

rt_health_url() { printf 'http://127.0.0.1:%s/health' "$(rt_port "$1")"; }

rt_diagnose() {
  local color="$1" log
  [ "$DRY_RUN" -eq 1 ] && return 0
  log="$(rt_dir "$color")/agent.log"
  printf -- '--- last log lines of %s (%s) ---\n' "$color" "$log" >&2
  tail -n 50 "$log" >&2 2>/dev/null || true
}
