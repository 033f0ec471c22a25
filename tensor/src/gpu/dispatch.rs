//! Recording and submitting work.
//!
//! Dispatches are recorded into one command encoder (the batch) and submitted together:
//! when the batch is full, before a host write or readback, or on `sync`. Each dispatch's
//! parameters (a small `#[repr(C)]` struct of u32 words, WGSL `var<uniform>`) go into a
//! slot of one pooled uniform buffer per batch, so no buffer is created per dispatch; the
//! slots are written with one `write_buffer` just before the batch is submitted.
//!
//! Binding convention for every kernel: `@group(0) @binding(0)` is the parameter uniform,
//! `@binding(1..)` are the storage buffers in the order passed to `dispatch`.

use super::buffer::{BufferKind, GpuBuffer};
use super::device::GpuDevice;
use super::pipeline::Pipeline;
use crate::error::{invalid, Result};

/// Parameter bytes a kernel may pass (WGSL uniform structs: keep under this).
pub(crate) const MAX_PARAMS_BYTES: usize = 512;

/// Dispatches per batch before it is submitted (keeps the GPU fed and memory bounded).
const MAX_DISPATCHES: usize = 128;

/// Recorded, not yet submitted work.
#[derive(Default)]
pub(crate) struct Batch {
    encoder: Option<wgpu::CommandEncoder>,
    /// Parameter slots of this batch, each `slot` bytes apart.
    params: Vec<u8>,
    /// The uniform buffer the slots will be written to (sized for `MAX_DISPATCHES` slots).
    param_buffer: Option<GpuBuffer>,
    dispatches: usize,
    /// Per-kernel timing, while switched on (see [`GpuDevice::start_kernel_timing`]).
    timing: Option<Timing>,
}

/// One dispatch's execution time on the GPU, from timestamp queries.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// The pipeline's label: the shader entry point and its variant.
    pub kernel: String,
    pub seconds: f64,
}

/// Timestamp queries around every compute pass of the batch: pass i writes queries 2i and
/// 2i+1 (each dispatch is its own pass, so each gets its own interval).
struct Timing {
    query_set: wgpu::QuerySet,
    /// Labels of this batch's timed dispatches, in order.
    labels: Vec<String>,
    /// Results of the batches submitted since timing started.
    done: Vec<KernelTime>,
}

/// Workgroup grid for `groups` workgroups: (x, y, 1) with x <= `max_x`, y <= `max_y`.
/// Kernels rebuild the linear id as `wid.x + wid.y * nwg.x` and bound-check it, since
/// `x * y` may exceed `groups`.
pub(crate) fn grid(groups: u64, max_x: u32, max_y: u32) -> Result<[u32; 3]> {
    let (max_x, max_y) = (max_x as u64, max_y as u64);
    if groups <= max_x {
        return Ok([groups as u32, 1, 1]);
    }
    let y = groups.div_ceil(max_x);
    if y > max_y {
        return Err(invalid("gpu", format!("{groups} workgroups exceed the device's {max_x}x{max_y} grid")));
    }
    Ok([groups.div_ceil(y) as u32, y as u32, 1])
}

impl GpuDevice {
    /// Bytes between parameter slots, and the largest parameter struct a dispatch may
    /// pass: 512, or the uniform offset alignment if a device needs more.
    pub(crate) fn max_params_bytes(&self) -> usize {
        (self.summary().min_uniform_buffer_offset_alignment as usize).max(MAX_PARAMS_BYTES)
    }

    /// Grid for `groups` workgroups on this device (see [`grid`]).
    pub(crate) fn grid(&self, groups: u64) -> Result<[u32; 3]> {
        let max = self.summary().max_compute_workgroups_per_dimension;
        #[cfg(test)]
        if let Some(max_x) = test_grid_limit::get() {
            return grid(groups, max_x, max);
        }
        grid(groups, max, max)
    }

    /// Record one dispatch of `pipeline` over `workgroups`, binding `params` (the bytes of
    /// the shader's parameter struct, binding 0) and `buffers` (bindings 1, 2, ...).
    /// Nothing runs until the batch is flushed.
    pub(crate) fn dispatch(
        &self,
        pipeline: &Pipeline,
        buffers: &[&wgpu::Buffer],
        params: &[u8],
        workgroups: [u32; 3],
    ) -> Result<()> {
        let slot = self.max_params_bytes();
        if params.len() > slot {
            return Err(invalid("gpu", format!("{}: {} parameter bytes exceed {slot}", pipeline.label, params.len())));
        }
        if workgroups.contains(&0) {
            return Ok(());
        }
        let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        if batch.dispatches == MAX_DISPATCHES {
            self.submit(&mut batch)?;
        }
        if batch.param_buffer.is_none() {
            batch.param_buffer = Some(self.pool.get(BufferKind::Uniform, (slot * MAX_DISPATCHES) as u64)?);
        }
        let offset = batch.params.len();
        batch.params.extend_from_slice(params);
        batch.params.resize(offset + slot, 0);

        let Batch { encoder, param_buffer, timing, .. } = &mut *batch;
        let param_buffer = param_buffer.as_ref().expect("set above").raw();
        let mut entries = Vec::with_capacity(buffers.len() + 1);
        entries.push(wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: param_buffer,
                offset: offset as u64,
                size: wgpu::BufferSize::new(params.len().next_multiple_of(16).max(16) as u64),
            }),
        });
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() });
        }
        let bind_group = self.scoped(&pipeline.label, wgpu::ErrorFilter::Validation, || {
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.layout,
                entries: &entries,
            })
        })?;
        let encoder = encoder.get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
        {
            let timestamp_writes = timing.as_mut().map(|t| {
                let i = t.labels.len() as u32;
                t.labels.push(pipeline.label.clone());
                wgpu::ComputePassTimestampWrites {
                    query_set: &t.query_set,
                    beginning_of_pass_write_index: Some(2 * i),
                    end_of_pass_write_index: Some(2 * i + 1),
                }
            });
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes });
            pass.set_pipeline(&pipeline.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        }
        batch.dispatches += 1;
        Ok(())
    }

    /// Record a buffer-to-buffer copy in the batch (ordered with the dispatches around it).
    pub(crate) fn copy_buffer(
        &self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        bytes: u64,
    ) {
        let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        let encoder = batch.encoder.get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
        encoder.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, bytes);
    }

    /// Record zero-filling the first `bytes` bytes (a multiple of 4) of `buffer`.
    pub(crate) fn clear_buffer(&self, buffer: &wgpu::Buffer, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        let encoder = batch.encoder.get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
        encoder.clear_buffer(buffer, 0, Some(bytes));
    }

    /// Submit the recorded batch (does not wait for it).
    pub(crate) fn flush(&self) -> Result<()> {
        let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        self.submit(&mut batch)
    }

    fn submit(&self, batch: &mut Batch) -> Result<()> {
        let Some(mut encoder) = batch.encoder.take() else {
            return Ok(());
        };
        let timed = self.resolve_timestamps(batch, &mut encoder);
        if let Some(pb) = batch.param_buffer.take() {
            // Lands before this submission and after every earlier one: slots of the
            // previous batch (same pooled buffer, perhaps) have been consumed by then.
            self.queue.write_buffer(pb.raw(), 0, &batch.params);
            // `pb` goes back to the pool here; the queue keeps the buffer alive meanwhile.
        }
        batch.params.clear();
        batch.dispatches = 0;
        self.queue.submit([encoder.finish()]);
        self.check()?;
        if let Some((labels, readback)) = timed {
            self.collect_timestamps(batch, labels, &readback)?;
        }
        Ok(())
    }

    /// Switch per-kernel timing on: from now on every dispatch is bracketed by timestamp
    /// queries, and each submission waits for its results (so timing slows a run down; the
    /// intervals themselves are the GPU's). Returns false, leaving timing off, when the
    /// adapter lacks timestamp queries (then only wall-clock timing is possible).
    pub fn start_kernel_timing(&self) -> Result<bool> {
        if !self.summary().timestamp_query {
            return Ok(false);
        }
        let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        self.submit(&mut batch)?; // earlier dispatches are not timed
        let query_set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("kernel timing"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * MAX_DISPATCHES as u32,
        });
        batch.timing = Some(Timing { query_set, labels: Vec::new(), done: Vec::new() });
        Ok(true)
    }

    /// Switch timing off and return every timed dispatch since `start_kernel_timing`, in
    /// submission order (empty when timing was not on).
    pub fn stop_kernel_timing(&self) -> Result<Vec<KernelTime>> {
        let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        self.submit(&mut batch)?;
        self.wait()?;
        Ok(batch.timing.take().map(|t| t.done).unwrap_or_default())
    }

    /// Record the resolve of this batch's timestamps into a readable buffer.
    fn resolve_timestamps(
        &self,
        batch: &mut Batch,
        encoder: &mut wgpu::CommandEncoder,
    ) -> Option<(Vec<String>, GpuBuffer)> {
        let t = batch.timing.as_mut()?;
        if t.labels.is_empty() {
            return None;
        }
        let labels = std::mem::take(&mut t.labels);
        let bytes = (2 * labels.len() * std::mem::size_of::<u64>()) as u64;
        let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        encoder.resolve_query_set(&t.query_set, 0..2 * labels.len() as u32, &resolve, 0);
        let readback = self.pool.get(BufferKind::Readback, bytes).ok()?;
        encoder.copy_buffer_to_buffer(&resolve, 0, readback.raw(), 0, bytes);
        Some((labels, readback))
    }

    /// Wait for a timed batch and turn its timestamps into durations.
    fn collect_timestamps(&self, batch: &mut Batch, labels: Vec<String>, readback: &GpuBuffer) -> Result<()> {
        let len = (2 * labels.len() * std::mem::size_of::<u64>()) as u64;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&self.map_read(readback.raw(), len)?);
        // Nanoseconds per tick; an end before its start (a wrapped or reset counter) reads 0.
        let period = self.queue.get_timestamp_period() as f64;
        if let Some(t) = batch.timing.as_mut() {
            for (kernel, pair) in labels.into_iter().zip(ticks.chunks_exact(2)) {
                t.done.push(KernelTime { kernel, seconds: pair[1].saturating_sub(pair[0]) as f64 * period * 1e-9 });
            }
        }
        Ok(())
    }

    /// Write `bytes` to the start of `buffer` from the host. Flushes the batch first so the
    /// write cannot overtake recorded dispatches that still use the buffer's old contents.
    pub(crate) fn write_buffer(&self, buffer: &wgpu::Buffer, bytes: &[u8]) -> Result<()> {
        let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        self.submit(&mut batch)?;
        self.queue.write_buffer(buffer, 0, bytes);
        Ok(())
    }

    /// Copy `bytes` bytes from the start of `buffer` to the host (flushes and waits).
    pub(crate) fn read_buffer(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.pool.get(BufferKind::Readback, bytes)?;
        {
            let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
            let encoder = batch.encoder.get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
            encoder.copy_buffer_to_buffer(buffer, 0, staging.raw(), 0, bytes);
            self.submit(&mut batch)?;
        }
        self.map_read(staging.raw(), bytes)
    }

    /// Map the first `bytes` bytes of a submitted readback buffer, wait for the device,
    /// copy them out and unmap.
    fn map_read(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let slice = buffer.slice(..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| invalid("gpu", "readback was never completed"))?
            .map_err(|e| invalid("gpu", format!("mapping the readback buffer failed: {e}")))?;
        let out = slice.get_mapped_range().map_err(|e| invalid("gpu", format!("readback: {e:?}")))?.to_vec();
        buffer.unmap();
        Ok(out)
    }
}

/// Tests can shrink the grid's x limit on their own thread, so small tensors exercise the
/// 2-D grids (and the bounds checks for overshooting ones) that only huge tensors need.
#[cfg(test)]
pub(crate) mod test_grid_limit {
    use std::cell::Cell;

    thread_local!(static LIMIT: Cell<Option<u32>> = const { Cell::new(None) });

    pub(crate) fn get() -> Option<u32> {
        LIMIT.with(|l| l.get())
    }

    /// Run `f` with at most `max` workgroups along x for dispatches made on this thread.
    pub(crate) fn with<T>(max: u32, f: impl FnOnce() -> T) -> T {
        let prev = LIMIT.with(|l| l.replace(Some(max)));
        let out = f();
        LIMIT.with(|l| l.set(prev));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::grid;

    #[test]
    fn grid_splits_large_counts() {
        assert_eq!(grid(5, 65535, 65535).unwrap(), [5, 1, 1]);
        let g = grid(100_000, 65535, 65535).unwrap();
        assert!(g[0] as u64 * g[1] as u64 >= 100_000 && g[0] <= 65535);
        assert!(grid(65535u64 * 65535 + 1, 65535, 65535).is_err());
        assert_eq!(grid(10, 4, 65535).unwrap(), [4, 3, 1]); // 12 >= 10: kernels bound-check
    }
}
