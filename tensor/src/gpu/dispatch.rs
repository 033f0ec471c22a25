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

        let Batch { encoder, param_buffer, .. } = &mut *batch;
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
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
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
        let Some(encoder) = batch.encoder.take() else {
            return Ok(());
        };
        if let Some(pb) = batch.param_buffer.take() {
            // Lands before this submission and after every earlier one: slots of the
            // previous batch (same pooled buffer, perhaps) have been consumed by then.
            self.queue.write_buffer(pb.raw(), 0, &batch.params);
            // `pb` goes back to the pool here; the queue keeps the buffer alive meanwhile.
        }
        batch.params.clear();
        batch.dispatches = 0;
        self.queue.submit([encoder.finish()]);
        self.check()
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
        let slice = staging.raw().slice(..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| invalid("gpu", "readback was never completed"))?
            .map_err(|e| invalid("gpu", format!("mapping the readback buffer failed: {e}")))?;
        let out = slice.get_mapped_range().map_err(|e| invalid("gpu", format!("readback: {e:?}")))?.to_vec();
        staging.raw().unmap();
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
