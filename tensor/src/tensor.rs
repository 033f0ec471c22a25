//! The owned tensor: a cheap-to-clone handle to shared storage plus a layout, and the
//! autograd node that produced it (if any).

use crate::autograd::{self, Op};
use crate::error::{invalid, Error, Result};
use crate::layout::checked_numel;
use crate::storage::{CpuStorage, Storage};
use crate::{DType, Device, Element, Layout};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

/// Unique identity of a tensor node, used as the key of the autograd tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn fresh() -> TensorId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A tensor. Clone is O(1): clones share storage, layout and autograd node.
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

struct Inner {
    id: TensorId,
    storage: Arc<RwLock<Storage>>,
    layout: Layout,
    dtype: DType,
    device: Device,
    /// How this tensor was computed, when it is part of a gradient graph. Shared with the
    /// data-free links to this node (see `graph_link`).
    op: Option<Arc<Op>>,
    /// A leaf whose gradient `backward` should accumulate.
    requires_grad: bool,
    grad: Mutex<Option<Tensor>>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {:?}, {:?}", self.shape(), self.dtype(), self.device())?;
        if self.requires_grad() {
            write!(f, ", requires_grad")?;
        }
        if self.numel() <= 16 {
            if let Ok(v) = self.to_vec_f64() {
                write!(f, ", {v:?}")?;
            }
        }
        write!(f, ")")
    }
}

impl Tensor {
    // ---- construction -------------------------------------------------------------------

    pub(crate) fn from_storage(storage: Storage, layout: Layout, op: Option<Op>) -> Tensor {
        let (dtype, device) = (storage.dtype(), storage.device());
        Tensor(Arc::new(Inner {
            id: TensorId::fresh(),
            storage: Arc::new(RwLock::new(storage)),
            layout,
            dtype,
            device,
            op: op.map(Arc::new),
            requires_grad: false,
            grad: Mutex::new(None),
        }))
    }

    /// A new contiguous tensor from a kernel's output; records `op` when any input tracks grad.
    pub(crate) fn from_kernel(
        storage: Storage,
        shape: &[usize],
        op: impl FnOnce() -> Op,
        inputs: &[&Tensor],
    ) -> Tensor {
        let op = autograd::should_track(inputs).then(op);
        Tensor::from_storage(storage, Layout::contiguous(shape), op)
    }

    /// A view: same storage, new layout.
    pub(crate) fn view(&self, layout: Layout, op: impl FnOnce() -> Op) -> Tensor {
        let op = autograd::should_track(&[self]).then(op);
        Tensor(Arc::new(Inner {
            id: TensorId::fresh(),
            storage: self.0.storage.clone(),
            layout,
            dtype: self.0.dtype,
            device: self.0.device,
            op: op.map(Arc::new),
            requires_grad: false,
            grad: Mutex::new(None),
        }))
    }

    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let n = checked_numel("from_vec", shape)?;
        if n != data.len() {
            return Err(invalid(
                "from_vec",
                format!("{} elements cannot have shape {shape:?} ({n} elements)", data.len()),
            ));
        }
        Ok(Tensor::from_storage(Storage::Cpu(CpuStorage::from_vec(data)), Layout::contiguous(shape), None))
    }

    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// f32 values stored as `dtype` (rounded).
    pub fn from_f32s(data: Vec<f32>, shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::from_vec(data, shape)?.to_dtype(dtype)
    }

    pub fn scalar(v: f32) -> Tensor {
        Tensor::from_storage(Storage::Cpu(CpuStorage::F32(vec![v])), Layout::contiguous(&[]), None)
    }

    pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
        let n = checked_numel("zeros", shape)?;
        Ok(Tensor::from_storage(Storage::Cpu(CpuStorage::zeros(dtype, n)?), Layout::contiguous(shape), None))
    }

    pub fn ones(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::full(shape, 1.0, dtype)
    }

    pub fn full(shape: &[usize], value: f32, dtype: DType) -> Result<Tensor> {
        let n = checked_numel("full", shape)?;
        Ok(Tensor::from_storage(Storage::Cpu(CpuStorage::full(dtype, n, value)?), Layout::contiguous(shape), None))
    }

    /// Zeros of this tensor's shape, dtype and device.
    pub fn zeros_like(&self) -> Result<Tensor> {
        self.full_like(self.shape(), 0.0)
    }

    pub fn ones_like(&self) -> Result<Tensor> {
        self.full_like(self.shape(), 1.0)
    }

    /// A constant of `shape` with this tensor's dtype and device (constants that gradient
    /// rules and composite ops combine with this tensor must live where it lives).
    pub fn full_like(&self, shape: &[usize], value: f32) -> Result<Tensor> {
        Tensor::full(shape, value, self.dtype())?.to_device(self.device())
    }

    /// A 0-d constant with this tensor's dtype and device.
    pub fn scalar_like(&self, value: f32) -> Result<Tensor> {
        self.full_like(&[], value)
    }

    /// This tensor on `device` (a copy, unless it is already there). Differentiable: the
    /// gradient moves back to the source device.
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        let out = self.storage().to_device(self.layout(), device)?;
        let from = self.device();
        Ok(Tensor::from_kernel(out, self.shape(), || Op::ToDevice { x: self.graph_link(), from }, &[self]))
    }

    /// `start, start+step, ...` below `end` (a 1-D tensor).
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(invalid("arange", format!("bad range {start}..{end} step {step}")));
        }
        let n = ((end - start) / step).ceil().max(0.0);
        if n > (1u64 << 40) as f64 {
            return Err(invalid("arange", format!("{n} elements is too many")));
        }
        let v: Vec<f64> = (0..n as usize).map(|i| start + i as f64 * step).collect();
        let storage = match dtype {
            DType::I32 => CpuStorage::I32(v.iter().map(|&x| x as i32).collect()),
            DType::U32 => CpuStorage::U32(v.iter().map(|&x| x as u32).collect()),
            _ => CpuStorage::from_f32(dtype, v.iter().map(|&x| x as f32).collect()),
        };
        Ok(Tensor::from_storage(Storage::Cpu(storage), Layout::contiguous(&[v.len()]), None))
    }

    // ---- accessors ----------------------------------------------------------------------

    pub fn id(&self) -> TensorId {
        self.0.id
    }
    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }
    pub fn dims(&self) -> &[usize] {
        self.shape()
    }
    pub fn rank(&self) -> usize {
        self.0.layout.rank()
    }
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    pub fn device(&self) -> Device {
        self.0.device
    }
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }
    pub(crate) fn op(&self) -> Option<&Op> {
        self.0.op.as_deref()
    }
    pub(crate) fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        // A poisoned lock means a kernel panicked while writing; the data may be partial,
        // but reading it cannot be unsafe, so recover rather than cascade the panic.
        self.0.storage.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Size of one dim (negative counts from the end).
    pub fn dim(&self, axis: isize) -> Result<usize> {
        let a = crate::layout::resolve_axis("dim", axis, self.rank())?;
        Ok(self.shape()[a])
    }

    // ---- autograd state -----------------------------------------------------------------

    /// A leaf that `backward` computes a gradient for (shares this tensor's storage).
    pub fn requires_grad_(self) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::fresh(),
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            dtype: self.0.dtype,
            device: self.0.device,
            op: None,
            requires_grad: true,
            grad: Mutex::new(None),
        }))
    }

    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }

    /// True when ops on this tensor are recorded (a grad leaf, or computed from one).
    pub fn tracks_grad(&self) -> bool {
        self.0.requires_grad || self.0.op.is_some()
    }

    /// This tensor as the input of an op whose gradient rule reads only its shape, dtype and
    /// device, never its values (an add, a dropout, a view, the activation side of a matmul
    /// with a frozen weight): the same autograd node (id and history) without the storage.
    /// Why: the tape used to keep every such input alive until backward, so each frozen
    /// projection's input and both operands of every residual and LoRA add stayed in memory.
    /// Leaves, tensors outside the graph, and outputs whose own rule reads them (exp,
    /// softmax, ...; `Op::reads_output`) are returned as they are.
    pub(crate) fn graph_link(&self) -> Tensor {
        match &self.0.op {
            Some(op) if !self.0.requires_grad && !op.reads_output() => Tensor(Arc::new(Inner {
                id: self.0.id,
                storage: Arc::new(RwLock::new(Storage::Cpu(CpuStorage::F32(Vec::new())))),
                layout: self.0.layout.clone(),
                dtype: self.0.dtype,
                device: self.0.device,
                op: Some(op.clone()),
                requires_grad: false,
                grad: Mutex::new(None),
            })),
            _ => self.clone(),
        }
    }

    /// A weak handle to the storage, to observe when it is freed (tests).
    #[cfg(test)]
    pub(crate) fn storage_weak(&self) -> std::sync::Weak<RwLock<Storage>> {
        Arc::downgrade(&self.0.storage)
    }

    /// The same data with no history: gradients stop here.
    pub fn detach(&self) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::fresh(),
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            dtype: self.0.dtype,
            device: self.0.device,
            op: None,
            requires_grad: false,
            grad: Mutex::new(None),
        }))
    }

    /// The accumulated gradient of a leaf, if `backward` has reached it.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn zero_grad(&self) {
        *self.0.grad.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub(crate) fn accumulate_grad(&self, g: Tensor) -> Result<()> {
        let mut slot = self.0.grad.lock().unwrap_or_else(|e| e.into_inner());
        let new = match slot.take() {
            Some(old) => old.add(&g)?,
            None => g.contiguous()?,
        };
        *slot = Some(new.detach());
        Ok(())
    }

    /// Replace this tensor's data in place with `src`'s (same shape and dtype; moved to this
    /// tensor's device if needed), keeping its identity: how optimizers update parameters. Every view of the storage sees the change.
    pub fn assign(&self, src: &Tensor) -> Result<()> {
        if src.shape() != self.shape() {
            return Err(Error::ShapeMismatch { op: "assign", lhs: self.shape().to_vec(), rhs: src.shape().to_vec() });
        }
        if src.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch { op: "assign", lhs: self.dtype(), rhs: src.dtype() });
        }
        self.check_whole_storage("assign")?;
        let new = src.storage().to_device(src.layout(), self.device())?;
        *self.0.storage.write().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(())
    }

    /// Overwrite `self[.., start..start + len, ..]` along `dim` with `src` (self's shape with
    /// `len` along `dim`), in place: how a KV cache is filled without copying what it
    /// already holds. Not recorded on the autograd tape. `self` must be contiguous and own
    /// its whole storage.
    pub fn write_at(&self, dim: usize, start: usize, src: &Tensor) -> Result<()> {
        self.check_whole_storage("write_at")?;
        let r = self.rank();
        let len = src.shape().get(dim).copied().unwrap_or(0);
        let fits = dim < r
            && src.rank() == r
            && (0..r).all(|i| i == dim || src.shape()[i] == self.shape()[i])
            && start.checked_add(len).is_some_and(|end| end <= self.shape()[dim]);
        if !fits {
            return Err(invalid(
                "write_at",
                format!("cannot write {:?} at {start} along dim {dim} of {:?}", src.shape(), self.shape()),
            ));
        }
        if src.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch { op: "write_at", lhs: self.dtype(), rhs: src.dtype() });
        }
        if src.device() != self.device() {
            return Err(Error::DeviceMismatch { op: "write_at", lhs: self.device(), rhs: src.device() });
        }
        let inner: usize = self.shape()[dim + 1..].iter().product();
        let outer: usize = self.shape()[..dim].iter().product();
        let src_data = src.storage().copy_contiguous(src.layout())?;
        let mut guard = self.0.storage.write().unwrap_or_else(|e| e.into_inner());
        guard.write_runs(&src_data, outer, len * inner, start * inner, self.shape()[dim] * inner)
    }

    /// Run `f` on the f32 storage in place (optimizer kernels). The tensor must be a
    /// contiguous f32 tensor that owns its whole storage.
    pub fn with_f32_data_mut<R>(&self, f: impl FnOnce(&mut [f32]) -> R) -> Result<R> {
        self.check_whole_storage("in-place update")?;
        let mut guard = self.0.storage.write().unwrap_or_else(|e| e.into_inner());
        match &mut *guard {
            Storage::Cpu(CpuStorage::F32(v)) => Ok(f(v)),
            Storage::Cpu(other) => Err(Error::UnsupportedDType { op: "in-place update", dtype: other.dtype() }),
            Storage::Gpu(_) => Err(invalid("in-place update", "host closures cannot update GPU memory")),
        }
    }

    pub(crate) fn check_whole_storage(&self, op: &'static str) -> Result<()> {
        let len = self.storage().len();
        if !self.is_contiguous() || self.layout().offset() != 0 || len != self.numel() {
            return Err(invalid(op, "the tensor must be contiguous and own its whole storage"));
        }
        Ok(())
    }

    // ---- reading data back --------------------------------------------------------------

    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        let s = self.storage();
        s.to_cpu()?.to_vec::<T>(self.layout()).ok_or(Error::DTypeMismatch {
            op: "to_vec",
            lhs: self.dtype(),
            rhs: T::DTYPE,
        })
    }

    /// Elements in row-major order converted to f32, whatever the dtype.
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        let s = self.storage();
        let host = s.to_cpu()?;
        Ok(host.f32_view(self.layout()).into_owned())
    }

    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        Ok(self.to_vec_f32()?.into_iter().map(|x| x as f64).collect())
    }

    /// The single value of a one-element tensor.
    pub fn to_scalar_f32(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(invalid("to_scalar", format!("tensor of shape {:?} is not a scalar", self.shape())));
        }
        Ok(self.to_vec_f32()?[0])
    }

    pub(crate) fn check_same_device(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.device() != other.device() {
            return Err(Error::DeviceMismatch { op, lhs: self.device(), rhs: other.device() });
        }
        Ok(())
    }

    pub(crate) fn check_same_dtype(&self, op: &'static str, other: &Tensor) -> Result<()> {
        self.check_same_device(op, other)?;
        if self.dtype() != other.dtype() {
            return Err(Error::DTypeMismatch { op, lhs: self.dtype(), rhs: other.dtype() });
        }
        Ok(())
    }

    pub(crate) fn check_float(&self, op: &'static str) -> Result<()> {
        if !self.dtype().is_float() {
            return Err(Error::UnsupportedDType { op, dtype: self.dtype() });
        }
        Ok(())
    }
}
