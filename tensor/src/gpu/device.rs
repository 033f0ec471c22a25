//! Adapter discovery and one shared device per adapter ordinal.
//!
//! Ordinals index the Vulkan/Metal/DX12 adapters sorted best first (discrete, integrated,
//! virtual, other, CPU rasterisers such as lavapipe), so `GpuDevice::get(0)` is the best
//! GPU present. `WGPU_BACKEND=vulkan` (wgpu's own variable) narrows the backends searched.
//!
//! wgpu reports validation errors and device loss through callbacks; both are recorded here
//! and surface as `Err` from the next call that checks (`GpuDevice::check`), never as a panic.

use super::buffer::BufferPool;
use super::dispatch::Batch;
use super::pipeline::{PipelineCache, RowReduce};
use super::user_kernel::UserKernel;
use crate::error::{invalid, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// What an adapter is and the limits/features the kernels care about.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterSummary {
    /// Index for `GpuDevice::get`.
    pub ordinal: usize,
    pub name: String,
    /// "vulkan", "metal", "dx12".
    pub backend: String,
    /// "discrete", "integrated", "virtual", "cpu", "other".
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    /// WGSL `enable f16;` is available.
    pub shader_f16: bool,
    /// Subgroup builtins (`subgroupAdd`, ...) are available.
    pub subgroups: bool,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
    pub timestamp_query: bool,
    pub max_buffer_size: u64,
    /// The largest tensor (in bytes) one storage binding can hold.
    pub max_storage_buffer_binding_size: u64,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub min_uniform_buffer_offset_alignment: u32,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "gpu:{} {} ({}, {}, driver {} {}) f16={} subgroups={} ({}..{}) timestamps={} \
             max_binding={} MiB workgroup_storage={} KiB",
            self.ordinal,
            self.name,
            self.backend,
            self.device_type,
            self.driver,
            self.driver_info,
            self.shader_f16,
            self.subgroups,
            self.subgroup_min_size,
            self.subgroup_max_size,
            self.timestamp_query,
            self.max_storage_buffer_binding_size >> 20,
            self.max_compute_workgroup_storage_size >> 10,
        )
    }
}

/// Which optional adapter features the kernels may use. Both are on by default; turning
/// one off opens the device without it, so the fallback kernels run exactly as on an
/// adapter that lacks the feature (for tests, and for researchers comparing the paths).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuOptions {
    /// Workgroup reductions through subgroup operations (else a workgroup-memory tree).
    pub subgroups: bool,
    /// f16 arithmetic in the f16 matmul (else f16 is storage only, with f32 math).
    pub shader_f16: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions { subgroups: true, shader_f16: true }
    }
}

impl GpuOptions {
    /// No optional feature: the kernels every adapter runs.
    pub const BASELINE: GpuOptions = GpuOptions { subgroups: false, shader_f16: false };

    /// The defaults less what `LAMINA_GPU_DISABLE` names (comma-separated: `subgroups`,
    /// `f16`); an unknown name is an error. `LAMINA_GPU_DETERMINISTIC=1` also turns
    /// subgroups off: every run is bit-identical on one adapter either way (no kernel uses
    /// float atomics), but with subgroups the order of additions inside a subgroup is the
    /// driver's; without them it is the WGSL source's alone (workgroup_reduce.wgsl).
    pub fn from_env() -> Result<GpuOptions> {
        let var = |name| std::env::var(name).ok();
        GpuOptions::parse(var("LAMINA_GPU_DISABLE").as_deref(), var("LAMINA_GPU_DETERMINISTIC").as_deref())
    }

    /// `from_env` on given values of the two variables.
    pub fn parse(disable: Option<&str>, deterministic: Option<&str>) -> Result<GpuOptions> {
        let mut o = GpuOptions::default();
        if deterministic == Some("1") {
            o.subgroups = false;
        }
        for name in disable.unwrap_or("").split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "subgroups" => o.subgroups = false,
                "f16" => o.shader_f16 = false,
                other => {
                    return Err(invalid(
                        "gpu",
                        format!("LAMINA_GPU_DISABLE: unknown feature `{other}` (known: subgroups, f16)"),
                    ))
                }
            }
        }
        Ok(o)
    }
}

/// A wgpu device and queue with everything the kernels share: the buffer pool, the
/// pipeline cache and the batch of recorded-but-unsubmitted dispatches.
pub struct GpuDevice {
    summary: AdapterSummary,
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) pool: Arc<BufferPool>,
    pub(crate) pipelines: PipelineCache,
    pub(crate) batch: Mutex<Batch>,
    /// How kernels combine values across a workgroup on this device.
    row_reduce: RowReduce,
    /// Whether the f16 matmul computes in f16 (SHADER_F16 present and enabled).
    f16_math: bool,
    /// A user's matmul kernel every matmul on this device runs instead of the engine's.
    matmul_kernel: Mutex<Option<Arc<UserKernel>>>,
    /// Set by the device-lost callback; every later call fails with this message.
    lost: Arc<Mutex<Option<String>>>,
    /// Errors wgpu raised outside an error scope, reported by the next `check`.
    uncaptured: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for GpuDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuDevice({})", self.summary.name)
    }
}

fn instance() -> &'static wgpu::Instance {
    static INSTANCE: OnceLock<wgpu::Instance> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        // Only the native compute backends: with GL enabled wgpu may silently pick OpenGL
        // on llvmpipe, which has no f16 and different limits.
        let ours = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
        desc.backends = wgpu::Backends::from_env().map_or(ours, |b| b & ours);
        wgpu::Instance::new(desc)
    })
}

/// Adapters sorted best first; enumerated once per process.
fn sorted_adapters() -> &'static [wgpu::Adapter] {
    static ADAPTERS: OnceLock<Vec<wgpu::Adapter>> = OnceLock::new();
    ADAPTERS.get_or_init(|| {
        let inst = instance();
        let mut list = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
        list.sort_by_key(|a| match a.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        });
        list
    })
}

fn summarize(ordinal: usize, a: &wgpu::Adapter) -> AdapterSummary {
    let (info, feats, lim) = (a.get_info(), a.features(), a.limits());
    AdapterSummary {
        ordinal,
        name: info.name,
        backend: info.backend.to_str().to_string(),
        device_type: match info.device_type {
            wgpu::DeviceType::DiscreteGpu => "discrete",
            wgpu::DeviceType::IntegratedGpu => "integrated",
            wgpu::DeviceType::VirtualGpu => "virtual",
            wgpu::DeviceType::Cpu => "cpu",
            wgpu::DeviceType::Other => "other",
        }
        .to_string(),
        driver: info.driver,
        driver_info: info.driver_info,
        shader_f16: feats.contains(wgpu::Features::SHADER_F16),
        subgroups: feats.contains(wgpu::Features::SUBGROUP),
        subgroup_min_size: info.subgroup_min_size,
        subgroup_max_size: info.subgroup_max_size,
        timestamp_query: feats.contains(wgpu::Features::TIMESTAMP_QUERY),
        max_buffer_size: lim.max_buffer_size,
        max_storage_buffer_binding_size: lim.max_storage_buffer_binding_size,
        max_storage_buffers_per_shader_stage: lim.max_storage_buffers_per_shader_stage,
        max_compute_workgroup_storage_size: lim.max_compute_workgroup_storage_size,
        max_compute_invocations_per_workgroup: lim.max_compute_invocations_per_workgroup,
        max_compute_workgroups_per_dimension: lim.max_compute_workgroups_per_dimension,
        min_uniform_buffer_offset_alignment: lim.min_uniform_buffer_offset_alignment,
    }
}

/// Every usable adapter, best first; empty when there is no driver (never panics).
pub fn adapters() -> Vec<AdapterSummary> {
    sorted_adapters().iter().enumerate().map(|(i, a)| summarize(i, a)).collect()
}

/// The adapter with `ordinal`, or an error saying which adapters exist (or that none do).
fn adapter(ordinal: usize) -> Result<&'static wgpu::Adapter> {
    let list = sorted_adapters();
    list.get(ordinal).ok_or_else(|| {
        let have = if list.is_empty() {
            "no Vulkan, Metal or DX12 adapter was found (is a driver installed? \
             for software Vulkan install Mesa's lavapipe)"
                .to_string()
        } else {
            format!(
                "only {} adapter(s) exist: {:?}",
                list.len(),
                adapters().iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        };
        invalid("gpu", format!("no GPU adapter with ordinal {ordinal}: {have}"))
    })
}

impl GpuDevice {
    /// The process-wide device for adapter `ordinal` (created on first use, then shared).
    pub fn get(ordinal: usize) -> Result<Arc<GpuDevice>> {
        static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<GpuDevice>>>> = OnceLock::new();
        let mut devices = DEVICES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = devices.get(&ordinal) {
            d.check_lost()?;
            return Ok(d.clone());
        }
        let adapter = adapter(ordinal)?;
        let device = Arc::new(GpuDevice::open(ordinal, adapter, GpuOptions::from_env()?)?);
        devices.insert(ordinal, device.clone());
        Ok(device)
    }

    /// A new device on adapter `ordinal`, not shared with `get`, using only the optional
    /// features `options` allows.
    pub fn open_with(ordinal: usize, options: GpuOptions) -> Result<Arc<GpuDevice>> {
        Ok(Arc::new(GpuDevice::open(ordinal, adapter(ordinal)?, options)?))
    }

    fn open(ordinal: usize, adapter: &wgpu::Adapter, options: GpuOptions) -> Result<GpuDevice> {
        let summary = summarize(ordinal, adapter);
        // The optional features kernels may use, where the adapter offers them.
        let mut wanted = wgpu::Features::TIMESTAMP_QUERY;
        if options.shader_f16 {
            wanted |= wgpu::Features::SHADER_F16;
        }
        if options.subgroups {
            wanted |= wgpu::Features::SUBGROUP;
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("lamina"),
            required_features: adapter.features() & wanted,
            required_limits: adapter.limits(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| invalid("gpu", format!("cannot open device on adapter {}: {e}", summary.name)))?;

        let lost = Arc::new(Mutex::new(None));
        let lost_cb = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            *lost_cb.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("device lost ({reason:?}): {msg}"));
        });
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(e.to_string());
        }));
        let pool = Arc::new(BufferPool::new(device.clone()));
        // subgroup_reduce.wgsl keeps one partial per subgroup in 64 slots: subgroups of at
        // least 4 for 256-invocation workgroups.
        let subgroups = device.features().contains(wgpu::Features::SUBGROUP) && summary.subgroup_min_size >= 4;
        Ok(GpuDevice {
            row_reduce: if subgroups { RowReduce::Subgroup } else { RowReduce::Workgroup },
            f16_math: device.features().contains(wgpu::Features::SHADER_F16),
            matmul_kernel: Mutex::new(None),
            batch: Mutex::new(Batch::default()),
            pipelines: PipelineCache::default(),
            pool,
            summary,
            device,
            queue,
            lost,
            uncaptured,
        })
    }

    pub fn summary(&self) -> &AdapterSummary {
        &self.summary
    }

    pub fn ordinal(&self) -> usize {
        self.summary.ordinal
    }

    /// How this device's kernels combine values across a workgroup.
    pub fn row_reduce(&self) -> RowReduce {
        self.row_reduce
    }

    /// Whether f16 matmuls compute in f16 here (else f32 math over f16 storage).
    pub fn f16_math(&self) -> bool {
        self.f16_math
    }

    /// Run every later matmul on this device with `kernel` (a user's, checked against the
    /// matmul contract), or with the engine's own again (`None`). Dispatches already
    /// recorded keep the kernel they were recorded with.
    pub fn set_matmul_kernel(&self, kernel: Option<Arc<UserKernel>>) -> Result<()> {
        if let Some(k) = &kernel {
            if k.family() != super::contract::Family::Matmul {
                return Err(invalid("gpu", format!("{k:?} is a {} kernel, not a matmul one", k.family().name())));
            }
        }
        *self.matmul_kernel.lock().unwrap_or_else(|e| e.into_inner()) = kernel;
        Ok(())
    }

    /// The user's matmul kernel in place on this device, if any.
    pub fn matmul_kernel(&self) -> Option<Arc<UserKernel>> {
        self.matmul_kernel.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The kernel paths in use, for `lamina devices` and bench output.
    pub fn kernel_paths(&self) -> String {
        let r = match self.row_reduce {
            RowReduce::Subgroup => "subgroup",
            RowReduce::Workgroup => "workgroup-memory",
        };
        let h = if self.f16_math { "f16 math" } else { "f32 math" };
        format!("reductions: {r}; f16 matmul: {h}")
    }

    /// The raw wgpu device, for kernels that need something this module does not wrap.
    pub fn wgpu_device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn limits(&self) -> wgpu::Limits {
        self.device.limits()
    }

    pub fn features(&self) -> wgpu::Features {
        self.device.features()
    }

    /// Submit everything recorded so far and wait until the GPU has finished it.
    pub fn sync(&self) -> Result<()> {
        self.flush()?;
        self.wait()
    }

    /// Block until all submitted work is done.
    pub(crate) fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| invalid("gpu", format!("waiting for the device failed: {e}")))?;
        self.check()
    }

    /// Release every idle pooled buffer (memory held by live tensors is untouched).
    pub fn trim_pool(&self) {
        self.pool.trim();
    }

    /// Bytes held idle by the buffer pool.
    pub fn pooled_bytes(&self) -> u64 {
        self.pool.idle_bytes()
    }

    fn check_lost(&self) -> Result<()> {
        match &*self.lost.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(msg) => Err(crate::Error::DeviceLost(msg.clone())),
            None => Ok(()),
        }
    }

    /// `Err` if the device was lost or wgpu reported an error since the last check.
    pub(crate) fn check(&self) -> Result<()> {
        self.check_lost()?;
        let mut errs = self.uncaptured.lock().unwrap_or_else(|e| e.into_inner());
        if errs.is_empty() {
            return Ok(());
        }
        let msg = errs.drain(..).collect::<Vec<_>>().join("; ");
        Err(invalid("gpu", msg))
    }

    /// Run `f` inside a wgpu error scope catching `filter`; its errors become `Err`.
    /// (Scopes are thread-local in wgpu, so concurrent callers do not see each other's.)
    pub(crate) fn scoped<T>(&self, what: &str, filter: wgpu::ErrorFilter, f: impl FnOnce() -> T) -> Result<T> {
        let scope = self.device.push_error_scope(filter);
        let out = f();
        match pollster::block_on(scope.pop()) {
            None => Ok(out),
            Some(e) => Err(invalid("gpu", format!("{what}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_from_the_variables() {
        let all = GpuOptions::default();
        assert_eq!(GpuOptions::parse(None, None).unwrap(), all);
        assert_eq!(GpuOptions::parse(Some("subgroups, f16"), None).unwrap(), GpuOptions::BASELINE);
        assert_eq!(GpuOptions::parse(Some("f16"), None).unwrap(), GpuOptions { shader_f16: false, ..all });
        assert_eq!(GpuOptions::parse(Some(""), Some("1")).unwrap(), GpuOptions { subgroups: false, ..all });
        assert_eq!(GpuOptions::parse(None, Some("0")).unwrap(), all);
        let err = GpuOptions::parse(Some("subgroups,fp16"), None).unwrap_err().to_string();
        assert!(err.contains("fp16") && err.contains("known"), "{err}");
    }

    #[test]
    fn adapters_list_and_bad_ordinals_are_errors() {
        let list = adapters();
        for a in &list {
            eprintln!("{a}");
        }
        // Never a panic: an ordinal past the list is a clear InvalidArgument.
        match GpuDevice::get(list.len() + 7) {
            Err(crate::Error::InvalidArgument { op: "gpu", msg }) => assert!(msg.contains("ordinal"), "{msg}"),
            other => panic!("expected an InvalidArgument error, got {other:?}"),
        }
        if let Some(dev) = crate::gpu::testing::device() {
            assert!(Arc::ptr_eq(&dev, &GpuDevice::get(dev.ordinal()).unwrap()), "one shared device per ordinal");
            dev.sync().unwrap();
        }
    }
}
