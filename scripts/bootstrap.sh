#!/usr/bin/env bash
# Makes a fresh Debian machine ready to run and test flatdepot: the real ostree, flatpak and gpg,
# PostgreSQL (for the tests and for production; the embedded default needs none), and the npm
# dependencies. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v ostree >/dev/null || missing+=(ostree)
command -v flatpak >/dev/null || missing+=(flatpak)
command -v gpg >/dev/null || missing+=(gnupg)
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
# The export test copies the repo's export with rsync, as a downstream mirror would.
command -v rsync >/dev/null || missing+=(rsync)
# The OCI test pushes images with skopeo, as an OCI build system would.
command -v skopeo >/dev/null || missing+=(skopeo)
# The nginx front test runs `flatdepot nginx-config` in a real nginx (the benchmarks use it too).
command -v nginx >/dev/null || missing+=(nginx-light)
# The dashboard test drives Debian's Chromium headless (playwright-core).
command -v chromium >/dev/null || missing+=(chromium)
# For the interoperability test with flat-manager's Python client (test equipment, see .ci/run).
/usr/bin/python3 -c 'import aiohttp, tenacity' 2>/dev/null || missing+=(python3-aiohttp python3-tenacity)
/usr/bin/python3 -c 'import gi; gi.require_version("OSTree", "1.0")' 2>/dev/null || missing+=(python3-gi gir1.2-ostree-1.0)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# PostgreSQL: start the installed cluster when it is down (the test suites use it).
if command -v pg_lsclusters >/dev/null; then
  while read -r version cluster _port status _rest; do
    if [ "$status" != "online" ]; then
      echo "bootstrap: starting PostgreSQL $version/$cluster"
      sudo_if_needed pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
    fi
  done < <(pg_lsclusters --no-header)
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# npm may skip lifecycle scripts (install-scripts policy); the Prisma client must exist either way.
[ -f src/generated/prisma/client.ts ] || node scripts/generate-prisma.mjs
