//! The allocator of the musl-linked forge: the first allocations come from a
//! static arena, the rest from musl's malloc.
//!
//! Why: musl's malloc (mallocng) maps a fresh page for a new group of small
//! blocks and unmaps a group as soon as its last block is freed. Parsing the
//! command line allocates and frees a few hundred small blocks, so every start of
//! forge made ~38 mmap and ~33 munmap calls, each mapped page then faulting in: a
//! good part of what `forge sandbox` costs on top of the sandbox itself. From the
//! arena, an allocation is a bump of an index and the pages are part of `.bss`
//! (touched once, never unmapped). Only the last block is reused (freed, it gives
//! its bytes back; it grows and shrinks in place), which serves the many
//! short-lived buffers of a parse; other freed blocks stay, so the arena holds at
//! most [`ARENA`] bytes for the life of the process. Once it is full, everything
//! goes to malloc as before.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes served from the arena: more than a start of `forge sandbox` or `forge
/// build` allocates before its real work.
const ARENA: usize = 256 << 10;

/// The arena's memory, in `.bss`.
#[repr(C, align(4096))]
struct Memory(UnsafeCell<[u8; ARENA]>);

// SAFETY: disjoint ranges are handed out through the atomic index only.
unsafe impl Sync for Memory {}

/// A bump allocator over [`Memory`] in front of the system allocator.
pub struct Arena {
    memory: Memory,
    /// Offset of the first free byte.
    next: AtomicUsize,
}

impl Arena {
    pub const fn new() -> Arena {
        Arena { memory: Memory(UnsafeCell::new([0; ARENA])), next: AtomicUsize::new(0) }
    }

    fn base(&self) -> usize {
        self.memory.0.get() as usize
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        (ptr as usize).wrapping_sub(self.base()) < ARENA
    }

    /// `layout.size()` bytes from the arena, or null when they do not fit.
    fn bump(&self, layout: Layout) -> *mut u8 {
        let base = self.base();
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let start = (base + next).next_multiple_of(layout.align()) - base;
            let Some(end) = start.checked_add(layout.size()).filter(|&end| end <= ARENA) else {
                return std::ptr::null_mut();
            };
            match self.next.compare_exchange_weak(next, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return (base + start) as *mut u8,
                Err(now) => next = now,
            }
        }
    }

    /// Moves the end of the arena's last block from `ptr + old` to `ptr + new`
    /// when `ptr` is that block and the new size fits (a new size of 0 frees it).
    fn resize_last(&self, ptr: *mut u8, old: usize, new: usize) -> bool {
        let start = ptr as usize - self.base();
        start + new <= ARENA
            && self.next.compare_exchange(start + old, start + new, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

// SAFETY: every live block is a distinct, suitably aligned range, either of the
// arena (the index only goes back over the last block, when it is freed or
// shrunk, and every change of the index is one compare-and-swap) or of the
// system allocator, which then also frees it.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = self.bump(layout);
        if ptr.is_null() {
            System.alloc(layout)
        } else {
            ptr
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = self.bump(layout);
        if ptr.is_null() {
            return System.alloc_zeroed(layout);
        }
        // The last block's bytes may have been used before.
        std::ptr::write_bytes(ptr, 0, layout.size());
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.owns(ptr) {
            System.dealloc(ptr, layout);
        } else {
            self.resize_last(ptr, layout.size(), 0);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) {
            return System.realloc(ptr, layout, new_size);
        }
        // The last block changes size in place; any smaller one stays where it is.
        if self.resize_last(ptr, layout.size(), new_size) || new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the caller guarantees that the new size, with the old alignment,
        // makes a valid layout.
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new = self.alloc(new_layout);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ARENA_UNDER_TEST: Arena = Arena::new();

    #[test]
    fn blocks_are_aligned_distinct_zeroed_and_grow_in_place_when_last() {
        let a = &ARENA_UNDER_TEST;
        let layout = |size, align| Layout::from_size_align(size, align).expect("a valid layout");
        // SAFETY: each block is used within its layout and freed with it.
        unsafe {
            let x = a.alloc(layout(3, 1));
            let y = a.alloc_zeroed(layout(64, 64));
            assert!(a.owns(x) && a.owns(y));
            assert_eq!(y as usize % 64, 0);
            assert!(y as usize >= x as usize + 3);
            assert!(std::slice::from_raw_parts(y, 64).iter().all(|&b| b == 0));
            std::ptr::write_bytes(y, 0xaa, 64);
            // The last block grows where it is; an earlier one moves, keeping its bytes.
            assert_eq!(a.realloc(y, layout(64, 64), 128), y);
            x.write(7);
            let x2 = a.realloc(x, layout(3, 1), 100);
            assert_ne!(x2, x);
            assert_eq!(x2.read(), 7);
            // The last block's bytes come back, zeroed when asked.
            std::ptr::write_bytes(x2, 0xbb, 100);
            a.dealloc(x2, layout(100, 1));
            let w = a.alloc_zeroed(layout(100, 1));
            assert_eq!(w, x2);
            assert!(std::slice::from_raw_parts(w, 100).iter().all(|&b| b == 0));
            a.dealloc(w, layout(100, 1));
        }
    }

    #[test]
    fn a_full_arena_hands_over_to_the_system_allocator() {
        static SMALL: Arena = Arena::new();
        let big = Layout::from_size_align(ARENA + 1, 8).expect("a valid layout");
        // SAFETY: the block is freed with the layout it was allocated with.
        unsafe {
            let p = SMALL.alloc(big);
            assert!(!p.is_null() && !SMALL.owns(p));
            SMALL.dealloc(p, big);
        }
    }
}
