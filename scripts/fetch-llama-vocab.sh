#!/usr/bin/env bash
# Fetch llama.cpp's tokenizer test vocabularies and chat templates into
# models/llama.cpp-vocab/ at the repository root:
#
#   models/llama.cpp-vocab/ggml-vocab-*.gguf          vocab-only GGUFs (~70 MB in all)
#   models/llama.cpp-vocab/ggml-vocab-*.gguf.inp/.out  texts and llama.cpp's token ids
#   models/llama.cpp-vocab/templates/*.jinja           real models' chat templates
#
# They ship in the `llama-cpp-python==0.3.36` source distribution on PyPI (llama.cpp
# vendored under vendor/llama.cpp/models/); we download it from the package index
# and extract only those members. Idempotent: does nothing when the folder
# holds a complete extraction of this version. `LLAMA_CPP_SDIST=/path/to.tar.gz` uses a
# copy already on disk instead of downloading (it is checked against the same sha256).
# Usage: scripts/fetch-llama-vocab.sh
set -euo pipefail

PKG="llama-cpp-python==0.3.36"
SDIST="llama_cpp_python-0.3.36.tar.gz"
SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
PREFIX="llama_cpp_python-0.3.36/vendor/llama.cpp/models"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/models/llama.cpp-vocab"
STAMP="$DEST/.complete"
PY="${PYTHON:-python3}"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$SHA256" ]]; then
    echo "fetch-llama-vocab: $DEST is complete ($PKG); nothing to do."
    exit 0
fi

sha_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

TMPDIR_DL="$(mktemp -d)"
trap 'rm -rf "$TMPDIR_DL"' EXIT
if [[ -n "${LLAMA_CPP_SDIST:-}" ]]; then
    TARBALL="$LLAMA_CPP_SDIST"
    echo "fetch-llama-vocab: using $TARBALL"
else
    # Straight from the package index, not `pip download`: pip prepares an sdist's metadata,
    # and on a machine without cmake, scikit-build-core's build requirements made pip
    # compile CMake from source (about 30 minutes of CI).
    INDEX="${PIP_INDEX_URL:-https://pypi.org/simple}"
    echo "fetch-llama-vocab: $SDIST (76 MB) from $INDEX"
    TARBALL="$TMPDIR_DL/$SDIST"
    "$PY" - "$INDEX" "$SDIST" "$TARBALL" <<'PYEOF'
import re, shutil, sys, urllib.parse, urllib.request
index, sdist, dest = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
page_url = index + "/llama-cpp-python/"
page = urllib.request.urlopen(page_url, timeout=120).read().decode()
link = re.search(r'href="([^"#]*' + re.escape(sdist) + ')', page)
if not link:
    sys.exit(f"fetch-llama-vocab: {sdist} is not listed at {page_url}")
url = urllib.parse.urljoin(page_url, link.group(1))
with urllib.request.urlopen(url, timeout=600) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PYEOF
fi
GOT="$(sha_of "$TARBALL")"
if [[ "$GOT" != "$SHA256" ]]; then
    echo "fetch-llama-vocab: sha256 mismatch for $TARBALL: expected $SHA256, got $GOT" >&2
    exit 1
fi

# Extract next to the destination, then swap it in, so an interrupted run leaves no
# half-filled folder behind that later runs would take for complete.
STAGE="$DEST.tmp"
rm -rf "$STAGE"
mkdir -p "$STAGE"
tar -xzf "$TARBALL" -C "$STAGE" --strip-components=4 --wildcards \
    "$PREFIX/ggml-vocab-*" "$PREFIX/templates/*"
echo "$SHA256" >"$STAGE/.complete"
rm -rf "$DEST"
mv "$STAGE" "$DEST"
echo "fetch-llama-vocab: wrote $(ls "$DEST"/ggml-vocab-*.gguf | wc -l) vocabularies and" \
    "$(ls "$DEST"/templates/*.jinja | wc -l) chat templates to $DEST"
