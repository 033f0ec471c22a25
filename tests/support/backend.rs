//! The backends a conformance run covers: the CPU kernels at the detected instruction set,
//! the CPU portable path (two code paths behind one `Device::Cpu`), and the GPU adapter
//! when one exists (`LAMINA_GPU_ORDINAL`, default 0). With `LAMINA_REQUIRE_GPU=1` (set by
//! CI, which has Mesa's lavapipe) a missing adapter fails the run instead of skipping.

use lamina_tensor::cpu::isa::{self, Isa};
use lamina_tensor::{Device, Tensor};

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
    /// Every backend present: the CPU at its detected ISA, then the portable CPU path if
    /// that is a different one.
    pub fn all() -> Vec<Backend> {
        let mut v = vec![Backend::Cpu(isa::detected())];
        if isa::detected() != Isa::Portable {
            v.push(Backend::Cpu(Isa::Portable));
        }
        v.extend(gpu_ordinal().map(Backend::Gpu));
        v
    }

    pub fn name(self) -> String {
        match self {
            Backend::Cpu(Isa::Avx2Fma) => "cpu-avx2".to_string(),
            Backend::Cpu(Isa::Portable) => "cpu-portable".to_string(),
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
