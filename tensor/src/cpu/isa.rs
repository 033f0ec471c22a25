//! Which instruction set the CPU kernels use, picked at run time.
//!
//! Every SIMD kernel has a portable twin that is always compiled and always tested; the
//! choice between them is made once per call from [`active`]. The level is, in order of
//! precedence: a test's or benchmark's [`force`], the `LAMINA_ISA` environment variable
//! (`portable`, `avx2`, `avx512`, `neon`; read once), the best level the CPU supports.
//!
//! Tests that need a level the CPU lacks skip it and say so on stderr ([`levels_to_test`]);
//! `LAMINA_REQUIRE_ISA=avx2,avx512` (or `neon`) turns such a skip into a failure, so a CI
//! machine that is supposed to exercise a level cannot pass by silently not running it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// An instruction-set level a CPU kernel can be compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust, auto-vectorised at best. Available everywhere.
    Portable,
    /// x86-64 with AVX2, FMA and F16C (Haswell, Zen and later): 8 f32 lanes.
    Avx2Fma,
    /// x86-64 with AVX-512 F, BW, VL and DQ on top of AVX2 (Skylake-SP, Ice Lake, Zen 4 and
    /// later): 16 f32 lanes, 32 vector registers, mask registers. The quantized kernels also
    /// use VNNI's `vpdpbusd` where the CPU has it (see [`has_avx512_vnni`]).
    Avx512,
    /// aarch64 Advanced SIMD (every 64-bit ARM core): 4 f32 lanes, 32 vector registers. The
    /// quantized kernels use `sdot` where the CPU has the `dotprod` extension.
    Neon,
}

impl Isa {
    /// Every level, best first within each architecture.
    pub const ALL: [Isa; 4] = [Isa::Avx512, Isa::Avx2Fma, Isa::Neon, Isa::Portable];

    /// f32 lanes in one vector register at this level (1 for the portable path).
    pub fn f32_lanes(self) -> usize {
        match self {
            Isa::Portable => 1,
            Isa::Neon => 4,
            Isa::Avx2Fma => 8,
            Isa::Avx512 => 16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// The short name `LAMINA_ISA` and `LAMINA_REQUIRE_ISA` use.
    pub fn key(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2Fma => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Parses a `key` (also accepts the display name, e.g. `avx2+fma`).
    pub fn parse(s: &str) -> Option<Isa> {
        let s = s.trim().to_ascii_lowercase();
        Isa::ALL.into_iter().find(|i| i.key() == s || i.name() == s)
    }

    /// Whether this build has kernels for the level (x86-64 levels on x86-64, NEON on aarch64).
    pub fn compiled(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Avx2Fma | Isa::Avx512 => cfg!(target_arch = "x86_64"),
            Isa::Neon => cfg!(target_arch = "aarch64"),
        }
    }

    /// Whether this CPU can run the level's kernels (cached by std after the first test).
    pub fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2Fma.supported()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512dq")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the CPU splits each 512-bit multiply-add into two 256-bit halves, so AVX-512
/// has the FMA throughput of AVX2: AMD Zen 4 (family 25 with AVX-512; Zen 3, the same
/// family, has none). Zen 5 and Intel's server cores run full-width 512-bit FMAs. The GEMM
/// uses its AVX2 tile on such CPUs, measured faster there (see `cpu/gemm.rs`).
pub fn avx512_split_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static SPLIT: OnceLock<bool> = OnceLock::new();
        *SPLIT.get_or_init(|| {
            use std::arch::x86_64::__cpuid;
            let (v, f) = (__cpuid(0), __cpuid(1));
            let amd = (v.ebx, v.edx, v.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163); // "AuthenticAMD"
                                                                                        // Family = base family (bits 8..12) + extended family (bits 20..28) when base is 15.
            let family = ((f.eax >> 8) & 0xf) + if (f.eax >> 8) & 0xf == 0xf { (f.eax >> 20) & 0xff } else { 0 };
            amd && family == 0x19 && Isa::Avx512.supported()
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU has AVX-512 VNNI (`vpdpbusd`: u8 x i8 dot products of 4, accumulated in
/// i32), which the AVX-512 quantized kernels use when present.
pub fn has_avx512_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        Isa::Avx512.supported() && is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU has the Armv8.2 dot-product instructions (`sdot`), which the NEON
/// quantized kernels use when present.
pub fn has_neon_dotprod() -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(not(target_arch = "aarch64"))]
    false
}

/// Every level this CPU runs, best first, ending with `Portable`.
pub fn available() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|i| i.supported()).collect()
}

/// The best level this CPU supports.
pub fn detected() -> Isa {
    available()[0]
}

/// `LAMINA_ISA`, read once: the level it names, or `None` when unset. A level the CPU
/// lacks, or an unknown name, is reported on stderr once and ignored (detection decides).
fn from_env() -> Option<Isa> {
    static ENV: OnceLock<Option<Isa>> = OnceLock::new();
    *ENV.get_or_init(|| {
        let v = std::env::var("LAMINA_ISA").ok()?;
        match Isa::parse(&v) {
            Some(i) if i.supported() => Some(i),
            Some(i) => {
                eprintln!("warning: LAMINA_ISA={v}: this CPU cannot run {i}; using {}", detected());
                None
            }
            None => {
                eprintln!(
                    "warning: LAMINA_ISA={v}: unknown level (portable, avx2, avx512, neon); using {}",
                    detected()
                );
                None
            }
        }
    })
}

// 0 = no override, else 1 + index into Isa::ALL.
static OVERRIDE: AtomicU8 = AtomicU8::new(0);

/// The level kernels use when nothing is [`force`]d: `LAMINA_ISA`, else detected.
pub fn default_level() -> Isa {
    from_env().unwrap_or_else(detected)
}

/// The level kernels use now: the [`force`]d one if set, else [`default_level`].
pub fn active() -> Isa {
    match OVERRIDE.load(Ordering::Relaxed) {
        0 => default_level(),
        i => Isa::ALL[i as usize - 1],
    }
}

/// Force a level for all later kernel calls (`None` restores `LAMINA_ISA` / detection).
/// Forcing a level the CPU lacks falls back to the detected one, so this can never cause
/// an illegal instruction. Meant for tests and benchmarks that compare paths.
pub fn force(isa: Option<Isa>) {
    let v = match isa {
        Some(i) if i.supported() => 1 + Isa::ALL.iter().position(|&x| x == i).unwrap() as u8,
        Some(_) => 1 + Isa::ALL.iter().position(|&x| x == detected()).unwrap() as u8,
        None => 0,
    };
    OVERRIDE.store(v, Ordering::Relaxed);
}

/// The levels `LAMINA_REQUIRE_ISA` names (comma-separated keys); panics on an unknown name,
/// so a typo cannot make the requirement vacuous.
pub fn required() -> Vec<Isa> {
    let v = std::env::var("LAMINA_REQUIRE_ISA").unwrap_or_default();
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Isa::parse(s).unwrap_or_else(|| panic!("LAMINA_REQUIRE_ISA: unknown level `{s}`")))
        .collect()
}

/// The levels a test of `what` should run: every level this CPU runs (best first, then
/// `Portable`). Each SIMD level it cannot run is reported on stderr as skipped, with the
/// reason; if `LAMINA_REQUIRE_ISA` names such a level, this panics (the test fails).
pub fn levels_to_test(what: &str) -> Vec<Isa> {
    let req = required();
    for isa in Isa::ALL.into_iter().filter(|i| *i != Isa::Portable && !i.supported()) {
        let why = if isa.compiled() { "this CPU lacks it" } else { "it is another architecture's level" };
        assert!(!req.contains(&isa), "{what}: LAMINA_REQUIRE_ISA names {} but {why}", isa.key());
        if isa.compiled() {
            eprintln!("skipped: {what} at {isa}: {why} (LAMINA_REQUIRE_ISA={} makes this a failure)", isa.key());
        }
    }
    available()
}

/// For a test of one level: true when the CPU runs `isa`; otherwise reports the skip on
/// stderr (or panics, when `LAMINA_REQUIRE_ISA` names the level) and returns false.
pub fn can_test(isa: Isa, what: &str) -> bool {
    if isa.supported() {
        return true;
    }
    let why = if isa.compiled() { "this CPU lacks it" } else { "it is another architecture's level" };
    assert!(!required().contains(&isa), "{what}: LAMINA_REQUIRE_ISA names {} but {why}", isa.key());
    eprintln!("skipped: {what} at {isa}: {why} (LAMINA_REQUIRE_ISA={} makes this a failure)", isa.key());
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for i in Isa::ALL {
            assert_eq!(Isa::parse(i.key()), Some(i));
            assert_eq!(Isa::parse(i.name()), Some(i));
        }
        assert_eq!(Isa::parse("AVX512"), Some(Isa::Avx512));
        assert_eq!(Isa::parse("sse9"), None);
    }

    #[test]
    fn available_levels_are_ordered_and_end_portable() {
        let a = available();
        assert_eq!(*a.last().unwrap(), Isa::Portable);
        assert!(a.iter().all(|i| i.supported() && i.compiled()));
        assert_eq!(detected(), a[0]);
        // An AVX-512 CPU also runs the AVX2 kernels (the level below).
        if Isa::Avx512.supported() {
            assert!(Isa::Avx2Fma.supported());
        }
    }
}
