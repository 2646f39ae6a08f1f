#!/usr/bin/env bash
# The README's run command: the agent on its embedded default (simulated PLC + local Supabase-compatible
# stack) in the foreground. Ctrl-C stops everything cleanly.
set -euo pipefail

usage() {
  cat <<USAGE
usage: scripts/run-local.sh [--status-every S]

Installs ald-agent into VENV=${VENV:-.venv} if needed, then runs \`python -m agent embedded\`.
USAGE
}

# shellcheck source=scripts/lib/env.sh
source "$(dirname "$0")/lib/env.sh"

main() {
  case "${1:-}" in -h|--help) usage; exit 0 ;; esac
  ensure_venv
  ensure_installed dev
  ensure_postgres
  cd "$ROOT"
  exec "$VENV/bin/python" -m agent embedded "$@"
}

main "$@"
