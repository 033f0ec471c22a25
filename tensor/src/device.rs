//! Where a tensor's storage lives: host memory or one GPU adapter (by ordinal, in the
//! order `lamina devices` lists them). Every `match` on `Device`/`Storage` handles both.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
    /// A wgpu adapter (Vulkan, Metal or DX12), by ordinal.
    Gpu(usize),
}

impl Device {
    pub fn name(self) -> String {
        match self {
            Device::Cpu => "cpu".to_string(),
            Device::Gpu(n) => format!("gpu:{n}"),
        }
    }

    pub fn is_gpu(self) -> bool {
        matches!(self, Device::Gpu(_))
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::str::FromStr for Device {
    type Err = crate::Error;
    /// `cpu`, `gpu` (adapter 0) or `gpu:N`.
    fn from_str(s: &str) -> crate::Result<Device> {
        let bad = || crate::error::invalid("device", format!("unknown device `{s}` (expected cpu, gpu or gpu:N)"));
        match s {
            "cpu" => Ok(Device::Cpu),
            "gpu" => Ok(Device::Gpu(0)),
            _ => match s.strip_prefix("gpu:") {
                Some(n) => n.parse().map(Device::Gpu).map_err(|_| bad()),
                None => Err(bad()),
            },
        }
    }
}
