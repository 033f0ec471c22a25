//! Where a tensor's storage lives. Only the CPU exists today; the GPU backend (wgpu)
//! adds a variant, and every `match` on `Device`/`Storage` then has to handle it.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
}

impl Device {
    pub fn name(self) -> String {
        match self {
            Device::Cpu => "cpu".to_string(),
        }
    }
}

impl std::str::FromStr for Device {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Device> {
        match s {
            "cpu" => Ok(Device::Cpu),
            other => Err(crate::error::invalid(
                "device",
                format!("unknown device `{other}` (this build has: cpu)"),
            )),
        }
    }
}
