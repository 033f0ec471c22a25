#!/usr/bin/env bash
# The NEON (aarch64) CPU kernels, cross-built on x86-64 and run under qemu-user: the part of
# the test suite that proves them, and the `lamina` binary an edge user would copy to a
# Raspberry Pi, generating from SmolLM2.
#
#   scripts/aarch64-check.sh            # everything below
#   scripts/aarch64-check.sh --no-cli   # the kernel tests only (skips the slow cross-build of the CLI)
#
# What runs (a subset of the x86 suite, chosen to cover every NEON kernel in bounded time):
#   1. lamina-tensor's CPU unit tests (`cpu::`): the SIMD elementwise/row/reduction kernels
#      and vector math at the NEON level against f64 and the portable path, the NEON GEMM
#      tile, the quantized kernels with `sdot` and without it, ISA detection.
#   2. The conformance table and the property tests (CPU backends: NEON and portable; no GPU
#      under qemu, so the GPU rows are skipped, saying so).
#   3. `lamina generate` cross-built for aarch64, 16 greedy tokens from SmolLM2-135M Q4_1
#      (`models/`, fetched by scripts/fetch-model.sh) under qemu, compared with the same
#      command on the native build: the same text is expected.
# qemu says nothing about speed; it proves the code is right. LAMINA_REQUIRE_ISA=neon makes
# a NEON level the CPU (here qemu's) lacks a failure rather than a skip.
#
# Needs Debian bookworm's cross toolchain (rustup's own cannot add the target offline):
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu \
#     libc6-dev-arm64-cross qemu-user-static
# Binaries are linked statically: dynamically linked aarch64 programs hang under qemu-user
# on these VMs once they start a thread. Every qemu run is bounded by `timeout`.
# Build output goes to $LAMINA_AARCH64_TARGET (default ~/.cache/lamina/aarch64-target), so
# a second run on the same machine rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

cli=1
[ "${1:-}" = "--no-cli" ] && cli=0
triple=aarch64-unknown-linux-gnu
export CARGO_TARGET_DIR=${LAMINA_AARCH64_TARGET:-$HOME/.cache/lamina/aarch64-target}
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="timeout 900 qemu-aarch64-static"
export LAMINA_REQUIRE_ISA=neon
# No GPU under qemu: the GPU rows skip (the x86 run covers them on lavapipe).
unset LAMINA_REQUIRE_GPU VK_DRIVER_FILES
# Debian's cargo and rustc (1.96, with the arm64 standard library), first on PATH.
cross() { PATH=/usr/bin:$PATH /usr/bin/cargo "$@"; }
cross --version

t0=$(date +%s)
echo "== aarch64: build the kernel tests"
cross test --release --target $triple -p lamina-tensor --lib --no-run -q
cross test --release --target $triple -p lamina-verify --test conformance --test properties --no-run -q
t1=$(date +%s)
echo "== aarch64: CPU unit tests under qemu"
cross test --release --target $triple -p lamina-tensor --lib -q -- cpu::
echo "== aarch64: conformance table and properties under qemu"
cross test --release --target $triple -p lamina-verify --test conformance --test properties -q
t2=$(date +%s)

if [ $cli = 1 ]; then
  echo "== aarch64: lamina generate on SmolLM2 under qemu, against the native build"
  cross build --release --target $triple -p lamina-cli -q
  model=models/SmolLM2-135M-Instruct.Q4_1.gguf
  [ -f $model ] || bash scripts/fetch-model.sh
  args=(generate --model $model -n 16 --greedy "The capital of France is")
  native=$(cargo run --release -q -p lamina-cli -- "${args[@]}")
  arm=$(timeout 900 qemu-aarch64-static "$CARGO_TARGET_DIR/$triple/release/lamina" "${args[@]}")
  timeout 120 qemu-aarch64-static "$CARGO_TARGET_DIR/$triple/release/lamina" devices | head -1
  echo "native:  $native"
  echo "aarch64: $arm"
  if [ "$native" != "$arm" ]; then
    echo "aarch64 output differs from the native build" >&2
    exit 1
  fi
fi
t3=$(date +%s)
echo "== aarch64 done: build $((t1 - t0)) s, kernel tests $((t2 - t1)) s, CLI $((t3 - t2)) s"
