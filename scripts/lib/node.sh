# shellcheck shell=bash
# Node.js and the npm packages of the supabase-js tests (tests/supalocal/test_supabase_js.py, tests/supalocal/js):
# Debian's nodejs and npm when missing (needs root or sudo), then `npm ci` in tests/supalocal/js when node_modules
# is missing or the lock changed since the last install. Sourced after scripts/lib/env.sh (uses step, die,
# apt_install, ROOT). Unlike the deploy tools, a missing Node.js is an error: those tests would fail, not skip.
# Uses VENV (the Node.js 20 fallback lives there).

JS_TEST_DIR="$ROOT/tests/supalocal/js"
# supabase-js 2.109 (what the lock pins) needs Node.js 20; 2.110 and later need 22. Node.js 20 has no global
# WebSocket, which is why the tests depend on `ws` too.
NODE_MIN_MAJOR=20

ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm \
      || die "Node.js $NODE_MIN_MAJOR+ and npm are needed for the supabase-js tests; install them (apt-get install nodejs npm)"
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt "$NODE_MIN_MAJOR" ]; then
    # Debian 12 ships Node.js 18: take Node.js 20's official build from the npm registry (the node-linux-<arch>
    # packages carry the release binary), into the venv, first on PATH for the tests.
    local prefix="$VENV/node$NODE_MIN_MAJOR" arch
    arch="$(node -p 'process.arch')"
    if [ ! -x "$prefix/node_modules/node-linux-$arch/bin/node" ]; then
      step "installing Node.js $NODE_MIN_MAJOR from the npm registry ($(command -v node) is $(node --version))"
      npm install --no-audit --no-fund --loglevel=error --prefix "$prefix" "node-linux-$arch@$NODE_MIN_MAJOR" \
        || die "Node.js $NODE_MIN_MAJOR+ is needed for the supabase-js tests and node-linux-$arch@$NODE_MIN_MAJOR did not install"
    fi
    export PATH="$prefix/node_modules/node-linux-$arch/bin:$PATH"
  fi
}

ensure_js_test_deps() {
  ensure_node
  local stamp="$JS_TEST_DIR/node_modules/.installed-lock.sha256" wanted
  wanted="$(sha256sum "$JS_TEST_DIR/package-lock.json")"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    step "installing the supabase-js test dependencies (npm ci in ${JS_TEST_DIR#"$ROOT"/})"
    (cd "$JS_TEST_DIR" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in $JS_TEST_DIR"
    printf '%s' "$wanted" >"$stamp"
  fi
}
