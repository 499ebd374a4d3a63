#!/usr/bin/env bash
# The servers the tests start (redis-server) and the browser the dashboard test drives (chromium
# with chromium-driver) come from Debian packages: install the missing ones.
# `make test` runs this; it does nothing when every command is already on the PATH.
set -euo pipefail
declare -A packages=([redis-server]=redis-server [chromium]=chromium [chromedriver]=chromium-driver)
missing=()
for command in "${!packages[@]}"; do
  command -v "$command" >/dev/null 2>&1 || missing+=("${packages[$command]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "The tests need: ${missing[*]}. Install them with your package manager." >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "Installing Debian packages the tests need: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
