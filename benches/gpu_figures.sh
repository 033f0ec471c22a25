#!/usr/bin/env bash
# GPU figures for docs/PERF.md, in one run, for a machine with a real GPU (e.g. the NVIDIA
# H200 the device tool lends): f32 and f16 matmul at 1024-8192, attention prefill and
# decode, the row kernels, each under both kernel paths (subgroups + f16 math, and
# LAMINA_GPU_DISABLE=subgroups,f16). JSON per run goes to ${OUT:-gpu-figures}/.
#
#   cargo build --release -p lamina-cli && bash benches/gpu_figures.sh [target/release/lamina]
set -u
LAMINA=${1:-target/release/lamina}
DIR=${OUT:-gpu-figures}
mkdir -p "$DIR"
"$LAMINA" devices | tee "$DIR/devices.txt"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv 2>/dev/null >"$DIR/nvidia-smi.csv"
run() { # name, disable, args...
    local name=$1 dis=$2
    shift 2
    echo "== $name (LAMINA_GPU_DISABLE=$dis)"
    LAMINA_GPU_DISABLE=$dis timeout 240 "$LAMINA" bench --device gpu --json --repeat 5 "$@" >"$DIR/$name.json" ||
        echo "   failed or timed out: $name"
}
for dis in "" "subgroups,f16"; do
    tag=${dis:+fallback}
    tag=${tag:-default}
    run "matmul-f32-$tag" "$dis" --ops matmul --sizes 1024,2048,4096,8192 --dtype f32
    run "matmul-f16-$tag" "$dis" --ops matmul --sizes 1024,2048,4096,8192 --dtype f16
    run "attention-$tag" "$dis" --ops attention --sizes 1x32x1024x128,1x32x4096x128,1x32x1x4096x128,8x32x1x4096x128
    run "rows-$tag" "$dis" --ops softmax,rms_norm,layer_norm --sizes 4096x4096,32x49152
done
echo "results in $DIR/"
