//! The backends a conformance run covers. Today: the CPU kernels at the detected
//! instruction set and the CPU portable path (two code paths behind one `Device::Cpu`).
//! A GPU backend adds a variant; the compiler then points at every match to extend.

use lamina_tensor::cpu::isa::{self, Isa};
use lamina_tensor::{DType, Device, OpName, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// CPU kernels with this instruction set forced.
    Cpu(Isa),
}

impl Backend {
    /// Every backend present: the CPU at its detected ISA, then the portable CPU path if
    /// that is a different one.
    pub fn all() -> Vec<Backend> {
        let mut v = vec![Backend::Cpu(isa::detected())];
        if isa::detected() != Isa::Portable {
            v.push(Backend::Cpu(Isa::Portable));
        }
        v
    }

    pub fn name(self) -> String {
        match self {
            Backend::Cpu(Isa::Avx2Fma) => "cpu-avx2".to_string(),
            Backend::Cpu(Isa::Portable) => "cpu-portable".to_string(),
        }
    }

    pub fn device(self) -> Device {
        match self {
            Backend::Cpu(_) => Device::Cpu,
        }
    }

    /// Route later ops to this backend. The CPU ISA is a process-wide switch, so backends
    /// must run one after another (inside one #[test]), never in parallel tests.
    pub fn activate(self) {
        match self {
            Backend::Cpu(i) => isa::force(Some(i)),
        }
    }

    /// Undo [`Backend::activate`]: back to the detected defaults.
    pub fn deactivate(self) {
        match self {
            Backend::Cpu(_) => isa::force(None),
        }
    }

    /// Move a tensor to this backend's device (nothing to do for the CPU).
    pub fn upload(self, t: Tensor) -> Tensor {
        match self {
            Backend::Cpu(_) => t,
        }
    }

    /// Whether the backend implements `op` for `dtype`; unsupported cases are listed as
    /// skipped, not failed (ggml's "not supported"). The CPU implements everything.
    pub fn supports(self, op: OpName, dtype: DType) -> bool {
        let _ = (op, dtype);
        match self {
            Backend::Cpu(_) => true,
        }
    }
}
