#!/usr/bin/env bash
# The distillation table of the README ("Distillation"): SmolLM2-135M-Instruct (the
# teacher, Q4_1) distilled into a student made of its even blocks (15 of 30), against the
# same student trained on the same data without the teacher (lamina finetune --method
# full: the same loop, data order, steps and learning rate), and against the teacher.
# Data: data/corpus.txt (English verse) in chunks of 8 non-empty lines, every 7th held
# out, the others one {"text"} line each for training. Measured: held-out perplexity (llama-perplexity's method, 256-token
# chunks), BLiMP minimal pairs (lamina eval --tasks blimp), size, speed (bench-model).
# The students are written in F16; the teacher and the untrained student (the teacher's
# blocks) are Q4_1; the distilled student is also measured quantized to Q4_1.
#
#   scripts/distill_report.sh            # about 40 minutes on a loaded 2-vCPU VM
#   STEPS=34 OUT=runs/kd-report LAMINA=target/release/lamina scripts/distill_report.sh
set -euo pipefail
L=${LAMINA:-target/release/lamina}
OUT=${OUT:-runs/kd-report}
STEPS=${STEPS:-34}  # one epoch of 135 chunks in batches of 4
T=${TEACHER:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
TRAIN=(--steps "$STEPS" --batch 4 --lr 5e-4 --warmup 3 --val-fraction 0 --eval-every 0 --save-every 0 --seed 0)
mkdir -p "$OUT"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
lines = [l.rstrip() for l in open("data/corpus.txt", encoding="utf-8") if l.strip()]
chunks = ["\n".join(lines[i:i + 8]) for i in range(0, len(lines), 8)]
train = [c for i, c in enumerate(chunks) if i % 7 != 6]
held = [c for i, c in enumerate(chunks) if i % 7 == 6]
with open(f"{out}/train.jsonl", "w") as f:
    for c in train:
        f.write(json.dumps({"text": c}) + "\n")
open(f"{out}/heldout.txt", "w").write("\n\n".join(held) + "\n")
print(f"{len(train)} training chunks of 8 lines, {len(held)} held out")
PY
echo "== $(grep -m1 'model name' /proc/cpuinfo); load: $(uptime)"
"$L" distill --teacher "$T" --student-layers every=2 --data "$OUT/train.jsonl" --out "$OUT/kd" --overwrite \
    --top-k 16 --temperature 1 --kd-weight 1 --ce-weight 0 "${TRAIN[@]}"
"$L" finetune --method full -m "$OUT/kd/student.gguf" --data "$OUT/train.jsonl" --out "$OUT/ce" --overwrite "${TRAIN[@]}"
"$L" quantize "$OUT/kd/final/model.gguf" "$OUT/kd-q4_1.gguf" --type q4_1
for m in "teacher:$T" "student-untrained:$OUT/kd/student.gguf" "student-kd:$OUT/kd/final/model.gguf" \
    "student-ce:$OUT/ce/final/model.gguf" "student-kd-q4_1:$OUT/kd-q4_1.gguf"; do
    name=${m%%:*}; file=${m#*:}
    echo "== $name ($file, $(stat -c %s "$file") bytes); load: $(uptime)"
    "$L" perplexity -m "$file" -f "$OUT/heldout.txt" --chunk 256 2>&1 | tail -2
    "$L" eval --tasks blimp -m "$file" --label "$name" -o "$OUT/eval" 2>&1 | grep -E "blimp|acc" | head -3
    "$L" bench-model -m "$file" -p 128 -n 32 -r 2 2>&1 | tail -3
done
