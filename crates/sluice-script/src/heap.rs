//! The heap limit of a script runtime, enforced by its allocator rather than by QuickJS's own
//! `malloc_limit`, so that a refused allocation is known. QuickJS answers one by throwing
//! "out of memory", or `null` when not even that error fits, and a promise job's failure is only
//! seen later as a rejection: without this record neither could be told from a script's own throw.

use std::cell::Cell;
use std::rc::Rc;

use rquickjs::allocator::{Allocator, RustAllocator};

/// Whether the runtime refused an allocation since [`OverLimit::reset`].
#[derive(Clone, Default)]
pub struct OverLimit(Rc<Cell<bool>>);

impl OverLimit {
    pub fn reset(&self) {
        self.0.set(false);
    }

    pub fn happened(&self) -> bool {
        self.0.get()
    }
}

/// Rust's global allocator, refusing to hold more than `limit` bytes.
pub struct Capped {
    limit: usize,
    used: usize,
    over: OverLimit,
}

impl Capped {
    pub fn new(limit: usize) -> (Self, OverLimit) {
        let over = OverLimit::default();
        (Self { limit, used: 0, over: over.clone() }, over)
    }

    fn admits(&self, size: usize) -> bool {
        let fits = self.used.checked_add(size).is_some_and(|total| total <= self.limit);
        if !fits {
            self.over.0.set(true);
        }
        fits
    }

    fn count(&mut self, ptr: *mut u8) -> *mut u8 {
        if !ptr.is_null() {
            // SAFETY: `ptr` was just returned by `RustAllocator`.
            self.used += unsafe { RustAllocator::usable_size(ptr) };
        }
        ptr
    }
}

// SAFETY: every call is passed on to `RustAllocator`, which meets the trait's contract; a refusal
// returns null, which the contract allows.
unsafe impl Allocator for Capped {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admits(size) {
            return std::ptr::null_mut();
        }
        let ptr = RustAllocator.alloc(size);
        self.count(ptr)
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        if !count.checked_mul(size).is_some_and(|total| self.admits(total)) {
            return std::ptr::null_mut();
        }
        let ptr = RustAllocator.calloc(count, size);
        self.count(ptr)
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        // SAFETY: the caller passes a pointer of this allocator, i.e. of `RustAllocator`.
        unsafe {
            self.used -= RustAllocator::usable_size(ptr);
            RustAllocator.dealloc(ptr);
        }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`.
        let old = unsafe { RustAllocator::usable_size(ptr) };
        if new_size > old && !self.admits(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: as for `dealloc`.
        let moved = unsafe { RustAllocator.realloc(ptr, new_size) };
        if !moved.is_null() {
            self.used -= old;
        }
        self.count(moved)
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: as for `dealloc`.
        unsafe { RustAllocator::usable_size(ptr) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_and_remembers_it() {
        let (mut heap, over) = Capped::new(1024);
        let a = heap.alloc(512);
        assert!(!a.is_null() && !over.happened());
        assert!(heap.alloc(1024).is_null());
        assert!(over.happened());
        over.reset();
        // SAFETY: `a` came from `heap`.
        let b = unsafe { heap.realloc(a, 900) };
        assert!(!b.is_null() && !over.happened());
        unsafe { heap.dealloc(b) };
        assert_eq!(heap.used, 0);
        let c = heap.calloc(4, 200);
        assert!(!c.is_null());
        unsafe { heap.dealloc(c) };
    }
}
