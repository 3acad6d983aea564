//! A global allocator that records, per thread, how many allocations were made
//! the largest single request and the peak of live bytes, so a property can assert that a decoder
//! rejects a huge declared length *before* allocating anything.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// Forwards to [`System`], noting every allocation on the calling thread.
pub struct Probe;

fn note(size: usize) {
    let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
    let _ = COUNT.try_with(|c| c.set(c.get().saturating_add(1)));
    grow(size as isize);
}

/// Tracks bytes live on this thread (allocated here, minus freed here) and their peak.
fn grow(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(delta);
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Probe {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        grow(-(layout.size() as isize));
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        grow(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
}

/// What `f` allocated on this thread.
#[derive(Debug, Clone, Copy)]
pub struct Allocs {
    /// Number of allocations (and reallocations).
    pub count: usize,
    /// Largest single request in bytes.
    pub largest: usize,
    /// Most bytes live at once (counted from the start of the measurement).
    pub peak: usize,
}

/// Runs `f` and reports its allocations on the current thread.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Allocs) {
    LARGEST.with(|c| c.set(0));
    COUNT.with(|c| c.set(0));
    LIVE.with(|c| c.set(0));
    PEAK.with(|c| c.set(0));
    let r = f();
    let allocs = Allocs {
        count: COUNT.with(Cell::get),
        largest: LARGEST.with(Cell::get),
        peak: PEAK.with(Cell::get).max(0) as usize,
    };
    (r, allocs)
}
