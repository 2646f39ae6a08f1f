#!/usr/bin/env bash
# A self-signed certificate for HAProxy's TLS listener (:8443), for local use and tests only.
# Production mounts a real certificate at the same path (HAPROXY_CERT, see docker-compose.prod.yml).
set -euo pipefail

CERT_DIR="${CERT_DIR:-$(cd "$(dirname "$0")" && pwd)/certs}"
CERT_NAME="${CERT_NAME:-ald-agent.pem}"
CERT_CN="${CERT_CN:-localhost}"
CERT_DAYS="${CERT_DAYS:-365}"
OPENSSL="${OPENSSL:-openssl}"

usage() {
  cat <<USAGE
usage: haproxy/make-selfsigned-cert.sh [-o DIR] [-n CN] [-d DAYS] [-f] [--dry-run]

Writes DIR/$CERT_NAME (certificate then key, the bundle HAProxy's 'crt' expects), mode 600.

  -o, --out DIR     output directory (CERT_DIR, default $CERT_DIR)
  -n, --cn NAME     common name and DNS subjectAltName (CERT_CN, default $CERT_CN)
  -d, --days N      validity in days (CERT_DAYS, default $CERT_DAYS)
  -f, --force       replace an existing bundle
      --dry-run     print the steps, write nothing
  -h, --help        this help
USAGE
}

DRY_RUN=0
FORCE=0

step() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
usage_error() { printf 'error: %s\n' "$*" >&2; usage >&2; exit 2; }
# The value of option $1, or a usage error when it is missing: VAR="$(value "$@")".
value() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi
  printf '%s' "$2"
}

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      -o|--out) CERT_DIR="$(value "$@")"; shift 2 ;;
      -n|--cn) CERT_CN="$(value "$@")"; shift 2 ;;
      -d|--days) CERT_DAYS="$(value "$@")"; shift 2 ;;
      -f|--force) FORCE=1; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  [[ "$CERT_DAYS" =~ ^[1-9][0-9]*$ ]] || usage_error "--days must be a positive integer"
}

make_bundle() {
  local bundle="$CERT_DIR/$CERT_NAME" work
  if [ -e "$bundle" ] && [ "$FORCE" -eq 0 ]; then
    step "keeping existing $bundle (--force replaces it)"
    return 0
  fi
  local args=(req -x509 -newkey rsa:2048 -nodes -sha256 -days "$CERT_DAYS" -subj "/CN=$CERT_CN"
              -addext "subjectAltName=DNS:$CERT_CN,IP:127.0.0.1")
  step "self-signed certificate for CN=$CERT_CN, $CERT_DAYS days → $bundle"
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '    + %s %s\n' "$OPENSSL" "${args[*]}"
    return 0
  fi
  command -v "$OPENSSL" >/dev/null || die "$OPENSSL not found (apt-get install openssl)"
  mkdir -p "$CERT_DIR"
  work="$(mktemp -d "$CERT_DIR/.cert.XXXXXX")"
  # shellcheck disable=SC2064  # expand $work now: the trap must remove this very directory
  trap "rm -rf '$work'" EXIT
  "$OPENSSL" "${args[@]}" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null \
    || die "openssl could not make the certificate"
  (umask 077 && cat "$work/cert.pem" "$work/key.pem" >"$work/bundle.pem")
  mv "$work/bundle.pem" "$bundle"
}

main() {
  parse_args "$@"
  make_bundle
}

main "$@"
