//! The plugin's memory allocator: a bump arena for the one message an
//! instance lives for.
//!
//! The runtime makes a fresh instance for every message and throws its
//! memory away when the call ends, so a general-purpose allocator's
//! bookkeeping (size classes, free lists, coalescing) is work nobody
//! benefits from. Here an allocation is a pointer bump in an arena that is
//! part of the module's initial memory (zeroed, never in the file: a
//! typical message needs no `memory.grow`). Freeing the newest allocation
//! gives its bytes back, and growing it extends it in place, so the common
//! `Vec`/`String` push loop copies nothing; any other free is a no-op.
//!
//! When the arena is full, allocations go to the system allocator
//! (wasi-libc's `malloc`), which reuses freed memory as before. So the
//! arena can cost a message at most its own size over what `malloc` alone
//! would use, and a message that fits under the plugin's memory cap with
//! `malloc` fits with the arena plus [`ARENA_BYTES`].
//!
//! It is the global allocator of every plugin built with this SDK for
//! WebAssembly (the `arena` feature, on by default). A plugin that keeps
//! a large working set which it frees and reallocates many times over
//! (far more than the message's size) may do better without it:
//! `weft-sdk = { default-features = false }`.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::alloc::System;

/// The arena's size: 2 MiB, several times what the shipped mappings
/// allocate for the largest corpus messages, well under the default
/// memory cap of 64 MiB.
pub const ARENA_BYTES: usize = 2 << 20;

#[repr(C, align(16))]
struct Region(UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: the region is only reached through `Arena`, whose bump pointer
// hands every byte out to one owner at a time. WebAssembly plugins are
// single-threaded; the atomic keeps the type sound anyway.
unsafe impl Sync for Region {}

static REGION: Region = Region(UnsafeCell::new([0; ARENA_BYTES]));

/// The bump allocator over the arena, falling back to [`System`].
pub struct Arena {
    /// Bytes of the region handed out (the offset of the next free byte).
    top: AtomicUsize,
}

impl Arena {
    /// An arena with nothing handed out.
    pub const fn new() -> Arena {
        Arena {
            top: AtomicUsize::new(0),
        }
    }

    fn base() -> usize {
        REGION.0.get() as usize
    }

    /// The offset of `ptr` in the region, if it is there.
    fn offset(ptr: *mut u8) -> Option<usize> {
        (ptr as usize)
            .checked_sub(Self::base())
            .filter(|o| *o < ARENA_BYTES)
    }

    /// Bumps the pointer for `layout`; `None` when the region is full.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let base = Self::base();
        let top = self.top.load(Relaxed);
        let start = (base + top).checked_next_multiple_of(layout.align())?;
        let end = start.checked_add(layout.size())?;
        if end - base > ARENA_BYTES {
            return None;
        }
        self.top.store(end - base, Relaxed);
        Some(start as *mut u8)
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

// SAFETY: every block handed out is inside the region and disjoint from
// every other live block (the bump pointer only moves back over the newest
// block, when it is freed or shrunk), or comes from `System`, which gets
// back exactly the blocks it gave.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's layout contract passes through.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match Self::offset(ptr) {
            Some(at) => {
                // The newest block gives its bytes back; the others wait
                // for the instance to end.
                if at + layout.size() == self.top.load(Relaxed) {
                    self.top.store(at, Relaxed);
                }
            }
            // SAFETY: not in the region, so `System` gave it.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(at) = Self::offset(ptr) else {
            // SAFETY: not in the region, so `System` gave it.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        let top = self.top.load(Relaxed);
        if at + layout.size() == top && at + new_size <= ARENA_BYTES {
            // The newest block grows or shrinks where it is.
            self.top.store(at + new_size, Relaxed);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `new_size` is non-zero (it exceeds a layout size) and,
        // per `realloc`'s contract, does not overflow when rounded to the
        // alignment.
        let grown = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`; the old block is valid for its size and
        // cannot overlap a block handed out after it.
        unsafe {
            let new = self.alloc(grown);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One region serves the whole test binary, so the tests share one
    // arena and run in one test function, in order.
    #[test]
    fn bumps_gives_back_the_newest_grows_in_place_and_falls_back_when_full() {
        let a = Arena::new();
        let l = |size, align| Layout::from_size_align(size, align).unwrap();
        unsafe {
            let p1 = a.alloc(l(10, 1));
            assert_eq!(Arena::offset(p1), Some(0));
            let p2 = a.alloc(l(8, 8));
            assert_eq!(Arena::offset(p2), Some(16), "aligned up");
            assert_eq!(a.top.load(Relaxed), 24);

            // Freeing an older block is a no-op; the newest gives back.
            a.dealloc(p1, l(10, 1));
            assert_eq!(a.top.load(Relaxed), 24);
            a.dealloc(p2, l(8, 8));
            assert_eq!(a.top.load(Relaxed), 16);

            // The newest block grows in place, keeping its bytes.
            let v = a.alloc(l(4, 4));
            v.copy_from_nonoverlapping([1, 2, 3, 4].as_ptr(), 4);
            let grown = a.realloc(v, l(4, 4), 4096);
            assert_eq!(grown, v);
            assert_eq!(a.top.load(Relaxed), 16 + 4096);
            // An older block that grows moves, its bytes copied.
            let w = a.alloc(l(1, 1));
            let moved = a.realloc(v, l(4096, 4), 8192);
            assert_ne!(moved, v);
            assert_eq!(std::slice::from_raw_parts(moved, 4), &[1, 2, 3, 4]);
            assert!(Arena::offset(w).is_some());

            // Past the region's end, the system allocator serves, and gets
            // its blocks back.
            let big = a.alloc(l(ARENA_BYTES, 16));
            assert!(!big.is_null());
            assert_eq!(Arena::offset(big), None);
            big.write_bytes(7, ARENA_BYTES);
            let big = a.realloc(big, l(ARENA_BYTES, 16), ARENA_BYTES + 1);
            assert_eq!(*big.add(ARENA_BYTES - 1), 7);
            a.dealloc(big, l(ARENA_BYTES + 1, 16));

            // A block that would cross the end is not cut short.
            let top = a.top.load(Relaxed);
            let rest = ARENA_BYTES - top;
            let over = a.alloc(l(rest + 1, 1));
            assert_eq!(Arena::offset(over), None);
            a.dealloc(over, l(rest + 1, 1));
            let fits = a.alloc(l(rest, 1));
            assert!(Arena::offset(fits).is_some());
            assert_eq!(a.top.load(Relaxed), ARENA_BYTES);
            // Growing the last block past the end moves it out.
            let out = a.realloc(fits, l(rest, 1), rest + 1);
            assert_eq!(Arena::offset(out), None);
            a.dealloc(out, l(rest + 1, 1));
        }
    }
}
