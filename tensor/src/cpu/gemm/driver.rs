//! The blocked loops around a micro-kernel, shared by every isa.
//!
//! ```text
//! parallel over parts: C split into one rectangle per thread (columns first), no sync inside
//!   for jc in part's columns by NC:        B block: KC x NC, packed by this part only
//!     for pc in k by KC:                   sequential: each C element sums its k blocks in order
//!       pack B[pc.., jc..] into NR panels
//!       for ic in part's rows by MC:
//!         pack A[rows, pc..] into MR panels (alpha folded in; <= MC x KC floats, sized for L2)
//!         for each B panel (KC x NR, stays in L1):
//!           for each A panel: micro-kernel on one MR x NR tile of C
//! ```
//!
//! Why one synchronisation-free part per thread: the previous per-(jc, pc) scheme (shared B
//! packed in parallel, then a parallel loop over MC row blocks) paid two rayon joins per k
//! block and idled at each barrier; measured 5-10% slower (medians) on 2 threads at 1024-2048.
//!
//! Thread-count independence: parts only partition C; KC is a constant of the kernel;
//! column origins are multiples of NR. Each C element gets the same kernel arithmetic in the same order (edge
//! tiles run the same kernel on a scratch copy) for any thread count.

use std::cell::Cell;

use rayon::prelude::*;

use super::MatRef;

/// Computes one MR x NR tile: `C = acc + (load_c ? beta * C : 0)`, `acc = A_panel * B_panel`.
/// Arguments: (kc, packed A panel, packed B panel, C tile, ldc, beta, load_c).
/// Safety contract: see the kernels (`kernel_simd.rs`, `kernel_portable.rs`).
pub(super) type MicroKernel = unsafe fn(usize, *const f32, *const f32, *mut f32, usize, f32, bool);

/// `pack::pack_a::<MR>`: (A, i0, rows, p0, kc, alpha, dst).
pub(super) type PackA = fn(&MatRef, usize, usize, usize, usize, f32, &mut [f32]);
/// `pack::pack_b::<NR>`: (B, p0, kc, j0, w, dst).
pub(super) type PackB = fn(&MatRef, usize, usize, usize, usize, &mut [f32]);

/// A micro-kernel, its register-tile shape, its cache blocking and the packers
/// instantiated for that shape.
#[derive(Clone, Copy)]
pub(super) struct Kernel {
    pub mr: usize,
    pub nr: usize,
    /// Depth of a k block: a KC x NR B panel should stay in L1d next to an A panel. Fixed
    /// per kernel, so results depend only on the inputs and the isa.
    pub kc: usize,
    /// Most rows of A packed at a time (a multiple of MR): MC x KC floats, sized for L2.
    pub mc: usize,
    pub f: MicroKernel,
    pub pack_a: PackA,
    pub pack_b: PackB,
}

/// Parts of C per thread. More would let rayon rebalance when a core is busy, at the cost of
/// packing A once more per part; 2 measured no better than 1 on 2 threads.
const PARTS_PER_THREAD: usize = 1;
/// Columns per B block: at most KC x NC x 4 B = 4 MiB per part, streamed from L3. A
/// multiple of every kernel's NR (8, 12, 16, 32).
pub(super) const NC: usize = 4032;
/// Writes an accumulated register tile to C: `C = acc + (load_c ? beta * C : 0)`, for
/// micro-kernels that accumulate into an array (the portable one, a researcher's).
///
/// # Safety
/// `c` is valid for reads and writes of rows `0..MR`, columns `0..NR` with row stride `ldc`,
/// and no other thread touches that tile during the call.
pub(super) unsafe fn store_tile<const MR: usize, const NR: usize>(
    acc: &[[f32; NR]; MR],
    c: *mut f32,
    ldc: usize,
    beta: f32,
    load_c: bool,
) {
    for (i, acc_row) in acc.iter().enumerate() {
        // SAFETY: row i of the tile is valid and exclusively ours, as promised.
        let row = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), NR) };
        if load_c {
            row.iter_mut().zip(acc_row).for_each(|(x, &s)| *x = s + beta * *x);
        } else {
            row.copy_from_slice(acc_row);
        }
    }
}

/// Largest MR * NR of any kernel (the edge-tile scratch buffer).
pub(super) const MAX_TILE: usize = 12 * 32;

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

/// The C pointer shared by parts. Sound because parts write disjoint tiles of C (see `run`).
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: the pointer is only dereferenced on disjoint rectangles of C, one per part.
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
    assert!(mr * nr <= MAX_TILE && NC.is_multiple_of(nr) && kern.mc.is_multiple_of(mr));
    let threads = rayon::current_num_threads();
    let (m_panels, n_panels) = (m.div_ceil(mr), n.div_ceil(nr));
    // One rectangle of C per part, with no synchronisation inside: each part packs its own
    // B (and its own A). Splitting the columns first means each thread packs only its share
    // of B; the duplicated packing of A costs m*k per part against m*k*n/parts multiply-adds.
    // Too few column panels for every part (narrow C): split the rows too.
    let parts = PARTS_PER_THREAD * threads;
    let pn = parts.min(n_panels);
    let pm = parts.div_ceil(pn).min(m_panels);
    let cptr = CPtr(c.as_mut_ptr());
    let part = |t: usize| {
        let (im, jn) = (t / pn, t % pn);
        let (p0, p1) = (im * m_panels / pm, (im + 1) * m_panels / pm);
        let (q0, q1) = (jn * n_panels / pn, (jn + 1) * n_panels / pn);
        let (i0, j0) = (p0 * mr, q0 * nr);
        let rect = Rect { i0, rows: (p1 * mr).min(m) - i0, j0, cols: (q1 * nr).min(n) - j0, k };
        compute_rect(kern, &a, &b, alpha, &rect, cptr, ldc, beta);
    };
    if pm * pn > 1 {
        (0..pm * pn).into_par_iter().for_each(part);
    } else {
        part(0);
    }
}

/// One part's rectangle of C: rows `i0..i0 + rows`, columns `j0..j0 + cols` (j0 a multiple
/// of NR, so tile origins, and hence the arithmetic, do not depend on the split).
struct Rect {
    i0: usize,
    rows: usize,
    j0: usize,
    cols: usize,
    k: usize,
}

/// The whole blocked loop nest over one rectangle of C, on the current thread.
#[allow(clippy::too_many_arguments)]
fn compute_rect(kern: &Kernel, a: &MatRef, b: &MatRef, alpha: f32, r: &Rect, cptr: CPtr, ldc: usize, beta: f32) {
    let (nr, kcmax, mc) = (kern.nr, kern.kc, kern.mc);
    let mut bvec = B_BUF.with(Cell::take);
    let bbuf = aligned(&mut bvec, kcmax.min(r.k) * NC.min(r.cols.next_multiple_of(nr)));
    for jc in (r.j0..r.j0 + r.cols).step_by(NC) {
        let nc = NC.min(r.j0 + r.cols - jc);
        for pc in (0..r.k).step_by(kcmax) {
            let kc = kcmax.min(r.k - pc);
            // Later k blocks accumulate onto what earlier ones stored.
            let (beta_eff, load_c) = if pc == 0 { (beta, beta != 0.0) } else { (1.0, true) };
            let bpack = &mut bbuf[..nc.div_ceil(nr) * kc * nr];
            (kern.pack_b)(b, pc, kc, jc, nc, bpack);
            for ic in (r.i0..r.i0 + r.rows).step_by(mc) {
                let block = Block { i0: ic, rows: mc.min(r.i0 + r.rows - ic), pc, kc, jc, nc };
                compute_block(kern, a, alpha, bpack, &block, cptr, ldc, beta_eff, load_c);
            }
        }
    }
    B_BUF.with(|cell| cell.set(bvec));
}

/// One MC step of `compute_rect`: C rows `i0..i0+rows` x all `nc` columns of the B block.
struct Block {
    i0: usize,
    rows: usize,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
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

    for q in 0..blk.nc.div_ceil(nr) {
        let j = blk.jc + q * nr;
        let w = nr.min(blk.jc + blk.nc - j);
        let bp = &bpack[q * kc * nr..(q + 1) * kc * nr];
        for (ip, ap) in apack.chunks_exact(mr * kc).enumerate() {
            let i = blk.i0 + ip * mr;
            let h = mr.min(blk.i0 + blk.rows - i);
            // SAFETY: `ap`/`bp` hold mr*kc / nr*kc packed floats. The tile rows i..i+h,
            // columns j..j+w lie inside C (sgemm checked c.len() >= (m-1)*ldc + n) and inside
            // this part's rectangle, which no other part touches. The kernel's isa was
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
