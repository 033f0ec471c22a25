//! Shader sources, typed variant keys and the pipeline cache.
//!
//! A shader file is plain WGSL under `shaders/` (`include_str!`), one per op family. Its
//! variants (dtype, op, workgroup size...) are WGSL `override` constants, so one module
//! serves them all and each variant is a pipeline compiled with different constant values.
//! What a family can vary is a typed key (`KernelKey`: a small Copy struct of enums), and
//! the key's `constants()` is the single place that turns it into override values.
//!
//! Every shader is composed as: its `enable` lines, then the codes generated from the Rust
//! enums (`codes.rs`: dtypes, op families), then `shaders/common.wgsl` (element codecs and
//! strided indexing), then, for kernels that combine values across a workgroup,
//! one of the two reduction libraries (`RowReduce`), then the file itself; that is the only
//! preprocessing. A module is compiled once per (file, reduction library).

use super::device::GpuDevice;
use crate::error::{invalid, Result};
use crate::DType;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Prepended to every shader: dtype codes and codecs, NaN helpers, strided indexing.
pub(crate) const COMMON: &str = include_str!("../../../shaders/common.wgsl");

/// Workgroup-wide reductions (`wg_sum`, `wg_max`...), one implementation per file.
const WORKGROUP_REDUCE: &str = include_str!("../../../shaders/workgroup_reduce.wgsl");
const SUBGROUP_REDUCE: &str = include_str!("../../../shaders/subgroup_reduce.wgsl");

/// Which implementation of the workgroup reductions a kernel is composed with: the same
/// kernel source either way (its entry points take a `Lane` and call `wg_sum`...).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RowReduce {
    /// A tree through workgroup memory (`shaders/workgroup_reduce.wgsl`): every adapter.
    Workgroup,
    /// Subgroup operations (`shaders/subgroup_reduce.wgsl`): adapters with SUBGROUP.
    Subgroup,
}

impl RowReduce {
    pub const ALL: [RowReduce; 2] = [RowReduce::Workgroup, RowReduce::Subgroup];

    fn library(self) -> (&'static str, &'static str) {
        match self {
            RowReduce::Workgroup => ("workgroup_reduce", WORKGROUP_REDUCE),
            RowReduce::Subgroup => ("subgroup_reduce", SUBGROUP_REDUCE),
        }
    }

    /// The device features this implementation needs.
    pub fn features(self) -> wgpu::Features {
        match self {
            RowReduce::Workgroup => wgpu::Features::empty(),
            RowReduce::Subgroup => wgpu::Features::SUBGROUP,
        }
    }
}

/// One WGSL file of `shaders/`.
#[derive(Debug)]
pub struct Shader {
    /// The file name without `.wgsl`; also the module's label.
    pub name: &'static str,
    /// The file's text (`include_str!("../../../../shaders/NAME.wgsl")`).
    pub source: &'static str,
}

impl Shader {
    /// The module text handed to the compiler: `enable` directives first (WGSL requires
    /// them before any declaration), then the generated codes, then `common.wgsl`, then the
    /// reduction library when
    /// `row_reduce` names one, then the rest of the file.
    pub fn compose(&self, row_reduce: Option<RowReduce>) -> String {
        let (enables, body): (Vec<&str>, Vec<&str>) =
            self.source.lines().partition(|l| l.trim_start().starts_with("enable "));
        let codes = super::codes::wgsl();
        let mut out =
            String::with_capacity(codes.len() + COMMON.len() + SUBGROUP_REDUCE.len() + self.source.len() + 64);
        for e in enables {
            out.push_str(e);
            out.push('\n');
        }
        out.push_str(codes);
        out.push_str(COMMON);
        if let Some(r) = row_reduce {
            let (name, text) = r.library();
            out.push_str("\n// ---- ");
            out.push_str(name);
            out.push_str(".wgsl ----\n");
            out.push_str(text);
        }
        out.push_str("\n// ---- ");
        out.push_str(self.name);
        out.push_str(".wgsl ----\n");
        for l in body {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// A typed description of one shader variant. Each op family defines its own key type
/// (e.g. `UnaryKey { op, dtype }`); the cache is keyed by the key itself.
pub trait KernelKey: Copy + Eq + Hash + Debug + Send + Sync + 'static {
    /// The shader file this family's kernels live in.
    fn shader(&self) -> &'static Shader;
    /// The `@compute` function to run.
    fn entry(&self) -> &'static str;
    /// Values for the shader's `override` declarations, by name.
    fn constants(&self) -> Vec<(&'static str, f64)>;
    /// Every variant this family can ask for; the naga test validates each one.
    fn all() -> Vec<Self>;
    /// The reduction library this variant is composed with; `None` for kernels that do not
    /// combine values across a workgroup through `wg_sum` and friends.
    fn row_reduce(&self) -> Option<RowReduce> {
        None
    }
    /// Optional device features the variant's module needs (the host only asks for a
    /// variant the device supports; `pipeline` refuses others with a clear error).
    fn features(&self) -> wgpu::Features {
        self.row_reduce().map_or(wgpu::Features::empty(), RowReduce::features)
    }
}

/// The WGSL code of a dtype as an override value (the `DT_*` constants: `codes.rs`).
pub fn dtype_code(dtype: DType) -> f64 {
    super::codes::dtype_code(dtype) as f64
}

/// A compiled compute pipeline and the layout of its bind group 0.
pub struct Pipeline {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) label: String,
}

impl Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pipeline({})", self.label)
    }
}

/// Shader modules by (file, reduction library), and pipelines by typed key (one map per
/// key type).
#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<(&'static str, Option<RowReduce>), wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
}

impl PipelineCache {
    fn lookup<K: KernelKey>(&self, key: &K) -> Option<Arc<Pipeline>> {
        let maps = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        let map = maps.get(&TypeId::of::<K>())?.downcast_ref::<HashMap<K, Arc<Pipeline>>>()?;
        map.get(key).cloned()
    }

    fn insert<K: KernelKey>(&self, key: K, p: Arc<Pipeline>) -> Arc<Pipeline> {
        let mut maps = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        let map = maps
            .entry(TypeId::of::<K>())
            .or_insert_with(|| Box::new(HashMap::<K, Arc<Pipeline>>::new()))
            .downcast_mut::<HashMap<K, Arc<Pipeline>>>()
            .expect("one map type per key type");
        // Another thread may have compiled the same variant meanwhile; keep the first.
        map.entry(key).or_insert(p).clone()
    }

    /// Pipelines compiled so far.
    pub(crate) fn len(&self) -> usize {
        self.pipelines.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl GpuDevice {
    /// The compiled pipeline for `key`, compiling it on first use (75-400 ms on lavapipe).
    pub(crate) fn pipeline<K: KernelKey>(&self, key: K) -> Result<Arc<Pipeline>> {
        if let Some(p) = self.pipelines.lookup(&key) {
            return Ok(p);
        }
        let shader = key.shader();
        let missing = key.features() - self.features();
        if !missing.is_empty() {
            return Err(invalid("gpu", format!("{key:?} needs {missing:?}, which {} lacks", self.summary().name)));
        }
        let module = self.module(shader, key.row_reduce())?;
        let label = format!("{}::{} {key:?}", shader.name, key.entry());
        // Compiled outside the cache lock so other kernels are not blocked meanwhile; no
        // zero-filling of workgroup memory: the engine's kernels initialise what they read.
        let pipeline = self.compile(&module, key.entry(), &key.constants(), label, false)?;
        Ok(self.pipelines.insert(key, Arc::new(pipeline)))
    }

    /// A pipeline from WGSL text that is not one of `shaders/` (a user's kernel,
    /// `user_kernel.rs`): compiled as given, not cached here. Workgroup memory starts
    /// zeroed, as WGSL promises (the engine's kernels opt out: they initialise what they read).
    pub(crate) fn compile_source(
        &self,
        label: &str,
        source: &str,
        entry: &str,
        constants: &[(&str, f64)],
    ) -> Result<Pipeline> {
        let module = self.scoped(&format!("shader {label}"), wgpu::ErrorFilter::Validation, || {
            self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            })
        })?;
        self.compile(&module, entry, constants, label.to_string(), true)
    }

    fn compile(
        &self,
        module: &wgpu::ShaderModule,
        entry: &str,
        constants: &[(&str, f64)],
        label: String,
        zero_initialize_workgroup_memory: bool,
    ) -> Result<Pipeline> {
        let pipeline = self.scoped(&format!("compiling {label}"), wgpu::ErrorFilter::Validation, || {
            self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: None,
                module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions { constants, zero_initialize_workgroup_memory },
                cache: None,
            })
        })?;
        let layout = pipeline.get_bind_group_layout(0);
        Ok(Pipeline { pipeline, layout, label })
    }

    fn module(&self, shader: &'static Shader, row_reduce: Option<RowReduce>) -> Result<wgpu::ShaderModule> {
        let id = (shader.name, row_reduce);
        if let Some(m) = self.pipelines.modules.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(m.clone());
        }
        let source = shader.compose(row_reduce);
        let module = self.scoped(&format!("shader {}.wgsl", shader.name), wgpu::ErrorFilter::Validation, || {
            self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            })
        })?;
        let mut modules = self.pipelines.modules.lock().unwrap_or_else(|e| e.into_inner());
        Ok(modules.entry(id).or_insert(module).clone())
    }

    /// Number of distinct pipeline key types compiled (diagnostics).
    pub fn pipeline_families(&self) -> usize {
        self.pipelines.len()
    }
}

/// One shader variant, spelled out (for validation without a device).
#[derive(Debug, Clone)]
pub struct Variant {
    pub shader: &'static Shader,
    pub entry: &'static str,
    pub constants: Vec<(&'static str, f64)>,
    pub row_reduce: Option<RowReduce>,
    pub features: wgpu::Features,
    /// `{key:?}`, for messages.
    pub key: String,
}

/// Every variant of key type `K`.
pub fn variants<K: KernelKey>() -> Vec<Variant> {
    K::all()
        .into_iter()
        .map(|k| Variant {
            shader: k.shader(),
            entry: k.entry(),
            constants: k.constants(),
            row_reduce: k.row_reduce(),
            features: k.features(),
            key: format!("{k:?}"),
        })
        .collect()
}
