#!/usr/bin/env bash
# Installs everything votescore needs on a fresh Debian machine: redis-server from
# apt, a virtualenv with the package and its dev extra, and the Kafka broker's jars
# through mvn. Safe to run again; it skips what is already in place.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv=${VOTESCORE_VENV:-$root/.venv}
apt_packages="redis-server redis-tools chromium"

log() { echo "bootstrap: $*" >&2; }

missing_apt() {
  local pkg missing=()
  for pkg in $apt_packages; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  echo "${missing[@]:-}"
}

install_apt() {
  local missing; missing=$(missing_apt)
  [ -z "$missing" ] && return
  log "installing with apt: $missing"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
}

install_python() {
  local stamp=$venv/.installed
  if [ -f "$stamp" ] && [ "$stamp" -nt "$root/pyproject.toml" ] \
    && [ "$stamp" -nt "$root/constraints.txt" ]; then return; fi
  log "creating virtualenv in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  # constraints.txt pins every package to the versions the tests last passed with;
  # pyproject.toml keeps the looser ranges a library user installs against.
  "$venv/bin/pip" install -q -c "$root/constraints.txt" -e "$root[dev]"
  touch "$stamp"
}

install_apt
install_python
"$here/kafka.sh" fetch
log "ready"
