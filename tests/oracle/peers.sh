#!/usr/bin/env bash
# Install the measurement peers and test oracles from the npm registry into
# the cache (never into the repository), once: ONNX Runtime's Node binding,
# whose package carries the CPU library (--ignore-scripts: its install script
# would try a download that is not needed), and TensorFlow.js (its pure-JS
# CPU backend). Prints the peers folder.
set -euo pipefail
cache=${QCAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qcal}
peers="$cache/peers"
ORT_VERSION=1.30.0
TFJS_VERSION=4.22.0
mkdir -p "$peers"
have=$(node -e "try{console.log(require('$peers/node_modules/onnxruntime-node/package.json').version)}catch(e){}" 2>/dev/null || true)
if [ "$have" != "$ORT_VERSION" ]; then
  command -v npm >/dev/null || { echo "qcal: npm is needed for the ONNX Runtime peer" >&2; exit 1; }
  echo "qcal: installing onnxruntime-node@$ORT_VERSION into $peers" >&2
  [ -f "$peers/package.json" ] || echo '{"name":"qcal-peers","private":true}' > "$peers/package.json"
  (cd "$peers" && npm install --ignore-scripts --no-audit --no-fund --silent \
      "onnxruntime-node@$ORT_VERSION" >/dev/null 2>&1) \
    || { echo "qcal: npm install onnxruntime-node@$ORT_VERSION failed" >&2; exit 1; }
fi
have=$(node -e "try{console.log(require('$peers/node_modules/@tensorflow/tfjs/package.json').version)}catch(e){}" 2>/dev/null || true)
if [ "$have" != "$TFJS_VERSION" ]; then
  echo "qcal: installing @tensorflow/tfjs@$TFJS_VERSION into $peers" >&2
  [ -f "$peers/package.json" ] || echo '{"name":"qcal-peers","private":true}' > "$peers/package.json"
  (cd "$peers" && npm install --ignore-scripts --no-audit --no-fund --silent \
      "@tensorflow/tfjs@$TFJS_VERSION" >/dev/null 2>&1) \
    || { echo "qcal: npm install @tensorflow/tfjs@$TFJS_VERSION failed" >&2; exit 1; }
fi
echo "$peers"
