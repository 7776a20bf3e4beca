# Sourced by scripts/run and scripts/test: makes sure the apt packages a step needs are
# installed. As root it installs what is missing; otherwise it names the command to run.
# shellcheck shell=bash

# C libraries the build links against (Package.swift's system-library targets).
BUILD_PACKAGES="pkg-config libssl-dev zlib1g-dev libhiredis-dev libpq-dev libsqlite3-dev"

ensure_apt_packages() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing apt packages: ${missing[*]}" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/devicehub-apt.log 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/devicehub-apt.log 2>&1 || {
        cat /tmp/devicehub-apt.log >&2; echo "apt-get install failed" >&2; return 1; }
    fi
  else
    echo "missing packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
}
