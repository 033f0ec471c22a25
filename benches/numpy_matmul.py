"""Reference GFLOP/s of numpy (OpenBLAS) float32 matmul, to compare with Lamina's sgemm.

Run in the same session as `cargo run --release --example bench` (this VM varies +-25%).
Threads: OPENBLAS_NUM_THREADS (default 2 here). For a fair run unset OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE, e.g.  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 numpy_matmul.py
Usage: numpy_matmul.py [sizes...]   (default 256 512 1024 2048)
"""
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
import numpy as np  # noqa: E402  (after the thread setting)

sizes = [int(s) for s in sys.argv[1:]] or [256, 512, 1024, 2048]
rng = np.random.default_rng(0)
for n in sizes:
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    flops = 2.0 * n**3
    reps = max(5, min(500, int(8e9 / flops)))
    np.matmul(a, b)  # warm up (thread pool, page faults)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        np.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    print(f"numpy threads={os.environ['OPENBLAS_NUM_THREADS']} n={n}: {flops / best / 1e9:.1f} GFLOP/s (best of {reps})")
