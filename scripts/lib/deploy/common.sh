# shellcheck shell=bash
# Output, dry-run and small shared helpers for scripts/deploy.sh and scripts/rollback.sh. Sourced: functions only.
#
# Conventions: `==>` step lines on stdout, `error:`/`warning:` lines on stderr. Every command that changes
# something goes through `run` (or `hap_do`, `state_write`), which in --dry-run prints `    + <command>`
# instead of running it, so a dry run shows the whole plan and changes nothing.

DRY_RUN="${DRY_RUN:-0}"
# shellcheck disable=SC2034  # read by runtime-*.sh, which shellcheck checks separately
COLORS=(blue green)

step() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# usage_error needs the calling script's usage().
usage_error() { printf 'error: %s\n' "$*" >&2; usage >&2; exit 2; }

# The value of option $1, or a usage error when it is missing: VAR="$(value "$@")".
value() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi
  printf '%s' "$2"
}

# A command line quoted so it can be pasted back into a shell.
quoted() {
  local line
  printf -v line '%q ' "$@"
  printf '%s' "${line% }"
}

# Run a command that changes something; in dry-run print it instead.
run() {
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '    + %s\n' "$(quoted "$@")"
    return 0
  fi
  "$@"
}

# Sleep that a dry run only announces.
pause() {
  if [ "$DRY_RUN" -eq 1 ]; then printf '    + sleep %s\n' "$1"; return 0; fi
  sleep "$1"
}

other_color() {
  case "$1" in
    blue) printf 'green' ;;
    green) printf 'blue' ;;
    *) die "not a color: '$1' (blue or green)" ;;
  esac
}

utc_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# Microseconds on the wall clock ($EPOCHREALTIME, bash ≥ 5), and seconds elapsed since such a reading.
now_us() { printf '%s' "${EPOCHREALTIME/[.,]/}"; }
elapsed_s() { awk -v a="$1" -v b="$(now_us)" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'; }
# shellcheck disable=SC2034  # read by state.sh (record_facts), which shellcheck checks separately
START_US="$(now_us)"

require_tools() {
  local tool missing=()
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (scripts/lib/tools.sh installs them on Debian)"
}

valid_environment() { [[ "$1" =~ ^[a-z][a-z0-9_-]{0,31}$ ]]; }
valid_tag() { [[ "$1" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; }  # a Docker image tag
