#!/usr/bin/env bash
# The README's test command (and what .ci/run calls): install what the tests need, lint, run every test.
set -euo pipefail

usage() {
  cat <<USAGE
usage: scripts/test.sh [PYTEST_ARGS...]

Creates the virtualenv (VENV=${VENV:-.venv}) with ald-agent[dev], makes sure PostgreSQL binaries exist for the
local Supabase stack and Node.js 20+ with the supabase-js test packages (npm ci in tests/supalocal/js), runs ruff
and mypy (strict), then pytest with PYTEST_ARGS (default: the whole suite, the timing-sensitive tests alone after
the rest has run on two workers).
USAGE
}

# shellcheck source=scripts/lib/env.sh
source "$(dirname "$0")/lib/env.sh"

main() {
  case "${1:-}" in -h|--help) usage; exit 0 ;; esac
  ensure_venv
  ensure_installed dev
  ensure_postgres
  # shellcheck source=scripts/lib/node.sh
  source "$ROOT/scripts/lib/node.sh" && ensure_js_test_deps
  # shellcheck source=scripts/lib/tools.sh
  source "$ROOT/scripts/lib/tools.sh" && ensure_deploy_tools
  step "ruff"
  "$VENV/bin/ruff" check "$ROOT"
  "$VENV/bin/ruff" format --check --quiet "$ROOT"

  cd "$ROOT"  # mypy reads its files and settings from ./pyproject.toml
  step "mypy"
  "$VENV/bin/mypy"

  if [ "$#" -gt 0 ]; then
    step "pytest $*"
    "$VENV/bin/python" -m pytest -q -ra "$@"
    return
  fi
  # The whole suite: what does not measure time on two workers, then the timing-sensitive tests alone
  # (the `serial` marker, tests/conftest.py), each part listing its slowest tests.
  step "pytest: the parallel part (2 workers)"
  "$VENV/bin/python" -m pytest -q -ra --durations=15 -n 2 --dist loadfile -m "not serial"
  step "pytest: the timing-sensitive part (alone)"
  "$VENV/bin/python" -m pytest -q -ra --durations=15 -m serial
}

main "$@"
