//! Which instruction set the CPU kernels use, picked at run time.
//!
//! Every SIMD kernel has a portable twin that is always compiled and always tested; the
//! choice between them is made once per call from [`active`]. Tests force the portable
//! path with [`force`] to compare the two on the same inputs.

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level a CPU kernel can be compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust, auto-vectorised at best. Available everywhere.
    Portable,
    /// x86-64 with AVX2 and FMA (Haswell, Zen and later): 8 f32 lanes, fused multiply-add.
    Avx2Fma,
}

impl Isa {
    /// f32 lanes in one vector register at this level (1 for the portable path).
    pub fn f32_lanes(self) -> usize {
        match self {
            Isa::Portable => 1,
            Isa::Avx2Fma => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2Fma => "avx2+fma",
        }
    }
}

/// The best level this CPU supports (detected once, cached by `is_x86_feature_detected!`).
pub fn detected() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Isa::Avx2Fma;
        }
    }
    Isa::Portable
}

// 0 = no override, 1 = portable, 2 = avx2+fma.
static OVERRIDE: AtomicU8 = AtomicU8::new(0);

/// The level kernels use now: the override if one is set, else the detected level.
pub fn active() -> Isa {
    match OVERRIDE.load(Ordering::Relaxed) {
        1 => Isa::Portable,
        2 if detected() == Isa::Avx2Fma => Isa::Avx2Fma,
        _ => detected(),
    }
}

/// Force a level for all later kernel calls (`None` restores detection). Forcing a level
/// the CPU lacks falls back to the detected one, so this can never cause an illegal
/// instruction. Meant for tests and benchmarks that compare paths.
pub fn force(isa: Option<Isa>) {
    let v = match isa {
        None => 0,
        Some(Isa::Portable) => 1,
        Some(Isa::Avx2Fma) => 2,
    };
    OVERRIDE.store(v, Ordering::Relaxed);
}
