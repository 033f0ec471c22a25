#!/usr/bin/env bash
# Why the Q4_1 quantization of a distilled student loses its training (README,
# "Distillation"): `lamina quantize` against llama.cpp's `llama-quantize` on the same F16
# student (the bytes must match), llama.cpp's `llama-perplexity` of that student in
# several formats, and how much of the training update each Q4_1 tensor keeps
# (scripts/quant_update_survival.py). Run scripts/distill_report.sh first (its OUT).
#
#   LLAMA_BIN=/path/to/llama.cpp/build/bin scripts/distill_quant_check.sh
set -euo pipefail
L=${LAMINA:-target/release/lamina}
OUT=${OUT:-runs/kd-report}
B=${LLAMA_BIN:?set LLAMA_BIN to the directory of llama-quantize and llama-perplexity}
START=$OUT/kd/student.gguf TRAINED=$OUT/kd/final/model.gguf
echo "== $(grep -m1 'model name' /proc/cpuinfo); load: $(uptime)"
"$L" quantize "$TRAINED" "$OUT/lamina-q4_1.gguf" --type q4_1 | head -1
for t in q4_1 q4_0 q4_k_m q6_k q8_0; do
    "$B/llama-quantize" "$TRAINED" "$OUT/llamacpp-$t.gguf" "$t" > /dev/null 2>&1
done
if cmp -s "$OUT/lamina-q4_1.gguf" "$OUT/llamacpp-q4_1.gguf"; then
    echo "lamina quantize q4_1 == llama-quantize q4_1 (byte for byte)"
else
    echo "lamina quantize q4_1 DIFFERS from llama-quantize q4_1"
fi
for f in "$START" "$TRAINED" "$OUT"/llamacpp-{q4_1,q4_0,q4_k_m,q6_k,q8_0}.gguf; do
    echo "== $f: $("$B/llama-perplexity" -m "$f" -f "$OUT/heldout.txt" -c 256 2>&1 | grep 'Final estimate')"
done
python3 scripts/quant_update_survival.py "$START" "$TRAINED" "$OUT/llamacpp-q4_1.gguf"
