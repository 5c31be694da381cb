#!/usr/bin/env bash
# Makes an archive repo with COUNT small apps (app/org.bench.App<N>/<arch>/stable), each exported
# by `flatpak build-export` with its own metadata and appstream file, as flatpak-builder leaves
# them: the repo the update-repo benchmark regenerates. Usage: make-many-apps.sh REPO COUNT
set -euo pipefail
repo=$1
count=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -d "$repo/objects" ] || ostree --repo="$repo" init --mode=archive-z2 >/dev/null

# One app directory per lane; two lanes export side by side (ostree locks the repo per transaction).
export_range() {
  local lane=$1 from=$2 to=$3 dir="$work/lane$1"
  # `export/` is what build-finish leaves; build-export wants it (a "finalized" build).
  mkdir -p "$dir/files/bin" "$dir/files/share/app-info/xmls" "$dir/export"
  printf '#!/bin/sh\necho hello\n' > "$dir/files/bin/hello"
  chmod +x "$dir/files/bin/hello"
  for i in $(seq "$from" "$to"); do
    id="org.bench.App$i"
    rm -f "$dir"/files/share/app-info/xmls/*
    printf '<?xml version="1.0"?>\n<components version="0.8" origin="flatpak"><component type="desktop"><id>%s.desktop</id><name>Bench app %s</name><summary>Number %s of many</summary></component></components>\n' "$id" "$i" "$i" |
      gzip -n > "$dir/files/share/app-info/xmls/$id.xml.gz"
    printf '[Application]\nname=%s\nruntime=org.test.Platform/%s/1.0\nsdk=org.test.Platform/%s/1.0\ncommand=hello\n' "$id" "$(flatpak --default-arch)" "$(flatpak --default-arch)" > "$dir/metadata"
    flatpak build-export --disable-sandbox --disable-fsync --no-update-summary --timestamp=2024-01-01T00:00:00Z "$repo" "$dir" stable >/dev/null
  done
}
half=$((count / 2))
export_range 1 1 "$half" &
first=$!
export_range 2 $((half + 1)) "$count" &
wait "$first"
wait $!
ostree --repo="$repo" refs | grep -c '^app/org\.bench\.App' 
