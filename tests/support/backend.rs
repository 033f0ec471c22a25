//! The backends a conformance run covers: the CPU kernels at every instruction-set level
//! the CPU runs (AVX-512, AVX2, NEON, portable: code paths behind one `Device::Cpu`), and
//! the GPU adapter when one exists (`LAMINA_GPU_ORDINAL`, default 0). With
//! `LAMINA_REQUIRE_GPU=1` (set by CI, which has Mesa's lavapipe) a missing adapter fails the
//! run instead of skipping; with `LAMINA_REQUIRE_ISA=avx512` (or avx2, neon) a missing CPU
//! level does. Levels the CPU lacks are reported on stderr, once per test binary.

use lamina_tensor::cpu::isa::{self, Isa};
use lamina_tensor::{Device, Tensor};
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// CPU kernels with this instruction set forced.
    Cpu(Isa),
    /// The GPU adapter with this ordinal (WGSL kernels through wgpu).
    Gpu(usize),
}

/// The GPU to test, if any: `Some(ordinal)` when an adapter answers. Panics (a test
/// failure) when `LAMINA_REQUIRE_GPU=1` and there is none.
pub fn gpu_ordinal() -> Option<usize> {
    lamina_tensor::gpu::test_ordinal()
}

impl Backend {
    /// Every backend present: the CPU at each level it runs, best first (the portable path
    /// last), then the GPU.
    pub fn all() -> Vec<Backend> {
        static LEVELS: OnceLock<Vec<Isa>> = OnceLock::new();
        let levels = LEVELS.get_or_init(|| isa::levels_to_test("CPU backends"));
        let mut v: Vec<Backend> = levels.iter().map(|&i| Backend::Cpu(i)).collect();
        v.extend(gpu_ordinal().map(Backend::Gpu));
        v
    }

    /// The backends a test can use without forcing the process-wide ISA switch (which would
    /// race with other tests of the binary): the CPU at its default level and the GPU.
    pub fn unforced() -> Vec<Backend> {
        let cpu = isa::default_level();
        Backend::all().into_iter().filter(|b| !matches!(b, Backend::Cpu(i) if *i != cpu)).collect()
    }

    pub fn name(self) -> String {
        match self {
            Backend::Cpu(i) => format!("cpu-{}", i.key()),
            Backend::Gpu(n) => format!("gpu:{n}"),
        }
    }

    pub fn device(self) -> Device {
        match self {
            Backend::Cpu(_) => Device::Cpu,
            Backend::Gpu(n) => Device::Gpu(n),
        }
    }

    /// Route later ops to this backend. The CPU ISA is a process-wide switch, so backends
    /// must run one after another (inside one #[test]), never in parallel tests.
    pub fn activate(self) {
        match self {
            Backend::Cpu(i) => isa::force(Some(i)),
            Backend::Gpu(_) => isa::force(None),
        }
    }

    /// Undo [`Backend::activate`]: back to the detected defaults.
    pub fn deactivate(self) {
        match self {
            Backend::Cpu(_) | Backend::Gpu(_) => isa::force(None),
        }
    }

    /// Move a tensor to this backend's device (nothing to do for the CPU).
    pub fn upload(self, t: Tensor) -> lamina_tensor::Result<Tensor> {
        t.to_device(self.device())
    }
}
