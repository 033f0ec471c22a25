//! The blocked loops around a micro-kernel, shared by every isa.
//!
//! ```text
//! for jc in n by NC:                     B block: KC x NC, packed once per (jc, pc), in L3
//!   for pc in k by KC:                   sequential: each C element sums its k blocks in order
//!     pack B[pc.., jc..] into NR panels  (parallel over panels)
//!     parallel over tasks = row blocks (<= MC rows) x column ranges of panels:
//!       pack A[rows, pc..] into MR panels (alpha folded in; <= MC x KC floats, sized for L2)
//!       for each B panel (KC x NR, stays in L1):
//!         for each A panel: micro-kernel on one MR x NR tile of C
//! ```
//!
//! Thread-count independence: tasks only partition C; KC is a constant; tile origins are
//! multiples of MR (rows) and NR (columns, since NC is a multiple of NR) whatever the split.
//! So each C element gets the same kernel arithmetic in the same order for any thread count.

use std::cell::Cell;

use rayon::prelude::*;

use super::MatRef;

/// Computes one MR x NR tile: `C = acc + (load_c ? beta * C : 0)`, `acc = A_panel * B_panel`.
/// Arguments: (kc, packed A panel, packed B panel, C tile, ldc, beta, load_c).
/// Safety contract: see the kernels (`kernel_avx2.rs`, `kernel_portable.rs`).
pub(super) type MicroKernel = unsafe fn(usize, *const f32, *const f32, *mut f32, usize, f32, bool);

/// `pack::pack_a::<MR>`: (A, i0, rows, p0, kc, alpha, dst).
pub(super) type PackA = fn(&MatRef, usize, usize, usize, usize, f32, &mut [f32]);
/// `pack::pack_b::<NR>`: (B, p0, kc, j0, w, dst).
pub(super) type PackB = fn(&MatRef, usize, usize, usize, usize, &mut [f32]);

/// A micro-kernel, its register-tile shape and the packers instantiated for that shape.
pub(super) struct Kernel {
    pub mr: usize,
    pub nr: usize,
    pub f: MicroKernel,
    pub pack_a: PackA,
    pub pack_b: PackB,
}

/// Depth of a k block. A KC x NR B panel (16 KiB at NR=16) stays in Zen3's 32 KiB L1d.
/// Fixed, so results do not depend on anything but the inputs.
const KC: usize = 256;
/// Most rows of A packed per task: MC x KC x 4 B = 72 KiB, well inside the 512 KiB L2.
/// Measured 72 ~ 144 alone; the smaller blocks balance better on a shared, noisy VM.
const MC: usize = 72;
/// Columns per B block: KC x NC x 4 B = 4 MiB, shared by all threads through L3.
const NC: usize = 4096;
/// Largest MR * NR of any kernel (the edge-tile scratch buffer).
const MAX_TILE: usize = 6 * 16;

thread_local! {
    // Packing buffers reused across calls. Taken out of the cell while in use (a nested or
    // re-entrant call on the same thread just finds it empty and allocates its own).
    static A_BUF: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static B_BUF: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// A 64-byte aligned window of `len` floats inside `v`, growing `v` if needed. Alignment
/// keeps each 16-float B row in one cache line.
fn aligned(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len + 16 {
        v.resize(len + 16, 0.0);
    }
    let off = match v.as_ptr().align_offset(64) {
        off if off < 16 => off,
        _ => 0,
    };
    &mut v[off..off + len]
}

/// The C pointer shared by tasks. Sound because tasks write disjoint tiles of C (see `run`).
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: the pointer is only dereferenced on disjoint rectangles of C, one per task.
unsafe impl Send for CPtr {}
unsafe impl Sync for CPtr {}

/// Same contract as `sgemm`, with m, n, k > 0, views and `c` already bounds-checked.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    kern: &Kernel,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    let (mr, nr) = (kern.mr, kern.nr);
    assert!(mr * nr <= MAX_TILE && NC.is_multiple_of(nr));
    let threads = rayon::current_num_threads();

    // Row blocks: balanced in whole MR panels; with several threads at least one per thread.
    let m_panels = m.div_ceil(mr);
    let mut mb = m.div_ceil(MC);
    if threads > 1 {
        mb = mb.next_multiple_of(threads).min(m_panels);
    }

    let mut bvec = B_BUF.with(Cell::take);
    let bbuf = aligned(&mut bvec, KC.min(k) * NC.min(n.next_multiple_of(nr)));
    let cptr = CPtr(c.as_mut_ptr());

    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        let n_panels = nc.div_ceil(nr);
        // Too few row blocks to feed every thread (small m): split the columns too.
        let nb = if mb < threads { threads.div_ceil(mb).min(n_panels) } else { 1 };
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            // Later k blocks accumulate onto what earlier ones stored.
            let (beta_eff, load_c) = if pc == 0 { (beta, beta != 0.0) } else { (1.0, true) };

            let bpack = &mut bbuf[..n_panels * kc * nr];
            if threads > 1 {
                // Contiguous runs of panels, a few per thread for balance.
                let per = n_panels.div_ceil(4 * threads);
                bpack.par_chunks_mut(per * kc * nr).enumerate().for_each(|(t, dst)| {
                    let j = t * per * nr;
                    (kern.pack_b)(&b, pc, kc, jc + j, (per * nr).min(nc - j), dst);
                });
            } else {
                (kern.pack_b)(&b, pc, kc, jc, nc, bpack);
            }
            let bpack = &*bpack;

            let task = |t: usize| {
                let (ib, jb) = (t / nb, t % nb);
                let (p0, p1) = (ib * m_panels / mb, (ib + 1) * m_panels / mb);
                let (q0, q1) = (jb * n_panels / nb, (jb + 1) * n_panels / nb);
                let block = Block { i0: p0 * mr, rows: (p1 * mr).min(m) - p0 * mr, pc, kc, jc, nc, q0, q1 };
                compute_block(kern, &a, alpha, bpack, &block, cptr, ldc, beta_eff, load_c);
            };
            if threads > 1 {
                (0..mb * nb).into_par_iter().for_each(task);
            } else {
                (0..mb * nb).for_each(task);
            }
        }
    }
    B_BUF.with(|cell| cell.set(bvec));
}

/// One task's share of a (jc, pc) step: C rows `i0..i0+rows` x B panels `q0..q1` of the block.
struct Block {
    i0: usize,
    rows: usize,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    q0: usize,
    q1: usize,
}

#[allow(clippy::too_many_arguments)]
fn compute_block(
    kern: &Kernel,
    a: &MatRef,
    alpha: f32,
    bpack: &[f32],
    blk: &Block,
    cptr: CPtr,
    ldc: usize,
    beta: f32,
    load_c: bool,
) {
    let (mr, nr, kc) = (kern.mr, kern.nr, blk.kc);
    let mut avec = A_BUF.with(Cell::take);
    let apack = aligned(&mut avec, blk.rows.div_ceil(mr) * mr * kc);
    (kern.pack_a)(a, blk.i0, blk.rows, blk.pc, kc, alpha, apack);

    for q in blk.q0..blk.q1 {
        let j = blk.jc + q * nr;
        let w = nr.min(blk.jc + blk.nc - j);
        let bp = &bpack[q * kc * nr..(q + 1) * kc * nr];
        for (ip, ap) in apack.chunks_exact(mr * kc).enumerate() {
            let i = blk.i0 + ip * mr;
            let h = mr.min(blk.i0 + blk.rows - i);
            // SAFETY: `ap`/`bp` hold mr*kc / nr*kc packed floats. The tile rows i..i+h,
            // columns j..j+w lie inside C (sgemm checked c.len() >= (m-1)*ldc + n) and inside
            // this task's rectangle, which no other task touches. The kernel's isa was
            // checked by sgemm's caller (see `Isa`).
            unsafe {
                let ct = cptr.0.add(i * ldc + j);
                if h == mr && w == nr {
                    (kern.f)(kc, ap.as_ptr(), bp.as_ptr(), ct, ldc, beta, load_c);
                } else {
                    // Edge tile: run the same kernel on a full-size scratch copy of the tile,
                    // so edge elements get exactly the arithmetic of interior ones.
                    let mut tile = [0.0f32; MAX_TILE];
                    for r in 0..h {
                        let row = std::slice::from_raw_parts_mut(ct.add(r * ldc), w);
                        if load_c {
                            tile[r * nr..r * nr + w].copy_from_slice(row);
                        }
                    }
                    (kern.f)(kc, ap.as_ptr(), bp.as_ptr(), tile.as_mut_ptr(), nr, beta, load_c);
                    for r in 0..h {
                        let row = std::slice::from_raw_parts_mut(ct.add(r * ldc), w);
                        row.copy_from_slice(&tile[r * nr..r * nr + w]);
                    }
                }
            }
        }
    }
    A_BUF.with(|cell| cell.set(avec));
}
