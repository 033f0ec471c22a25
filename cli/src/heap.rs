//! The `lamina` binary's allocator: the system allocator behind a cache of large freed
//! blocks, counting the bytes live at any moment and their high-water mark.
//!
//! Why a cache: a training step allocates the same activation and gradient buffers, of the
//! same sizes, every step. glibc serves blocks over 32 MiB (the logits of a batch) with
//! mmap, trims freed heap back to the OS, and splits and merges free chunks until the heap
//! is fragmented: a LoRA step at batch 4 x 256 page-faulted 2.4 GB back in every step (600k
//! faults) and the process grew to 1.8x its live bytes. Here a freed block of 256 KiB or
//! more waits, in a free list of its size class (sizes rounded up to 8 classes per power of
//! two) and alignment, for the next request of that class, which in a training loop comes
//! one step later. Smaller blocks go to malloc.
//!
//! Why count: the RSS of two identical runs differed by hundreds of MiB depending on how the
//! kernel threads' allocations interleaved; the peak of live bytes is what the run needed.
//! Cached free blocks are not live and are not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

pub struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Blocks at least this large are cached when freed.
const CACHED_MIN: usize = 256 << 10;
/// Distinct block sizes the cache can track (a training step at batch 4 x 256 frees a few
/// thousand large blocks of about a hundred sizes).
const SIZES: usize = 4096;
/// Bytes kept in free blocks at most: the run's peak of live bytes so far (a training step
/// frees at most that much for the next one to reuse), at least 256 MiB. When a freed block
/// would pass it, every cached block goes back to malloc first: with batches of varying
/// length (SFT data) many sizes never come again, and holding them grew the RSS of a 40-step
/// run to 10 GB over 1.6 GB live.
const CACHED_MIN_CAP: usize = 256 << 20;

/// The free blocks of one layout, as a stack linked through the blocks themselves (each
/// free block's first word holds the address of the next one).
#[derive(Clone, Copy)]
struct Class {
    size: usize, // 0: unused entry
    align: usize,
    head: usize, // 0: empty stack
}

struct Cache {
    /// Open addressing by size; entries are never removed, so a probe stops at an unused one.
    classes: [Class; SIZES],
    bytes: usize,
}

// A std Mutex never allocates (a futex on Linux), so it is usable inside the allocator.
static CACHE: Mutex<Cache> = Mutex::new(Cache { classes: [Class { size: 0, align: 0, head: 0 }; SIZES], bytes: 0 });

impl Cache {
    /// The class of this layout; created when `create` and there is room.
    fn class(&mut self, layout: Layout, create: bool) -> Option<&mut Class> {
        let start = ((layout.size() as u64 >> 6).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) as usize % SIZES;
        for i in 0..SIZES {
            let k = (start + i) % SIZES;
            let c = self.classes[k];
            if c.size == layout.size() && c.align == layout.align() {
                return Some(&mut self.classes[k]);
            }
            if c.size == 0 {
                if !create {
                    return None;
                }
                self.classes[k] = Class { size: layout.size(), align: layout.align(), head: 0 };
                return Some(&mut self.classes[k]);
            }
        }
        None
    }

    /// A cached block of exactly this layout, taken out of the cache.
    fn take(&mut self, layout: Layout) -> Option<*mut u8> {
        let c = self.class(layout, false)?;
        if c.head == 0 {
            return None;
        }
        let ptr = c.head as *mut usize;
        // SAFETY: `head` is a free block of this class, at least CACHED_MIN bytes, whose
        // address `put` checked to be word-aligned and whose first word `put` wrote.
        c.head = unsafe { ptr.read() };
        self.bytes -= layout.size();
        Some(ptr as *mut u8)
    }

    /// Keep a freed block; gives it back when it cannot be kept.
    fn put(&mut self, ptr: *mut u8, layout: Layout) -> Option<(*mut u8, Layout)> {
        // malloc's blocks are 16-byte aligned whatever the layout asked for; the link word needs 8.
        if !(ptr as usize).is_multiple_of(std::mem::align_of::<usize>()) {
            return Some((ptr, layout));
        }
        let cap = PEAK.load(Relaxed).max(CACHED_MIN_CAP);
        if self.bytes + layout.size() > cap {
            self.flush();
            if layout.size() > cap {
                return Some((ptr, layout));
            }
        }
        let Some(c) = self.class(layout, true) else { return Some((ptr, layout)) };
        // SAFETY: the block is ours now (freed by its owner), large and aligned enough.
        unsafe { (ptr as *mut usize).write(c.head) };
        c.head = ptr as usize;
        self.bytes += layout.size();
        None
    }
}

impl Cache {
    /// Give every cached block back to malloc.
    fn flush(&mut self) {
        for c in self.classes.iter_mut().filter(|c| c.head != 0) {
            // SAFETY: every block of the class was allocated by `System` with this layout.
            let layout = unsafe { Layout::from_size_align_unchecked(c.size, c.align) };
            while c.head != 0 {
                let ptr = c.head as *mut usize;
                // SAFETY: as in `take`: a free block whose first word `put` wrote.
                c.head = unsafe { ptr.read() };
                unsafe { System.dealloc(ptr as *mut u8, layout) };
            }
        }
        self.bytes = 0;
    }
}

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: blocks come from `System` with the caller's layout, either directly or from the
// cache, which only hands a block back out for a request of the very layout it was
// allocated with; `dealloc` either caches a block or returns it to `System`.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let layout = block(layout);
        let cached = if layout.size() >= CACHED_MIN { cache().take(layout) } else { None };
        let p = cached.unwrap_or_else(|| unsafe { System.alloc(layout) });
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let layout = block(layout);
        if layout.size() >= CACHED_MIN {
            if let Some(p) = cache().take(layout) {
                // SAFETY: `p` is a block of `layout.size()` bytes owned by this call.
                unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
                grew(layout.size());
                return p;
            }
        }
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let layout = block(layout);
        LIVE.fetch_sub(layout.size(), Relaxed);
        let back = if layout.size() >= CACHED_MIN { cache().put(ptr, layout) } else { Some((ptr, layout)) };
        if let Some((p, l)) = back {
            unsafe { System.dealloc(p, l) };
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() < CACHED_MIN && new_size < CACHED_MIN {
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                LIVE.fetch_sub(layout.size(), Relaxed);
                grew(new_size);
            }
            return p;
        }
        // A large block lives in its rounded size class: move it (as GlobalAlloc's default).
        // SAFETY: the caller guarantees `new_size` with this alignment is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let p = unsafe { self.alloc(new_layout) };
        if !p.is_null() {
            // SAFETY: both blocks hold at least min(old, new) bytes and do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size)) };
            unsafe { self.dealloc(ptr, layout) };
        }
        p
    }
}

/// The block actually allocated for `layout`: large sizes are rounded up to one of eight
/// classes per power of two (at most 12.5% more), so batches of varying length, whose
/// buffers differ by a few tokens, reuse each other's blocks.
fn block(layout: Layout) -> Layout {
    let size = layout.size();
    if size < CACHED_MIN {
        return layout;
    }
    let granule = 1usize << (usize::BITS - 1 - size.leading_zeros() - 3);
    let rounded = size.div_ceil(granule) * granule;
    Layout::from_size_align(rounded, layout.align()).unwrap_or(layout)
}

/// The most heap bytes live at once so far, in MiB (model weights, activations, the
/// autograd tape, optimizer state; not memory-mapped model files, not cached free blocks).
pub fn peak_heap_mib() -> f64 {
    PEAK.load(Relaxed) as f64 / (1024.0 * 1024.0)
}
