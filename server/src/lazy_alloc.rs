//! brokerd's global allocator: the system allocator, except that a single allocation
//! of [`LAZY_ALLOCATION_BYTES`] or more is an anonymous `mmap` with `MAP_NORESERVE`,
//! so it costs address space until it is written, never a refusal up front.
//!
//! Why: `kafka-protocol` 0.18's array decoders call `Vec::with_capacity` with the
//! element count a request announces, before decoding one element (upstream
//! kafka-protocol-rs PRs 152, 161 and 200, open when this was written). An 18-byte
//! DeleteRecords request announcing 2^31 - 1 topics asks for that many structs at
//! once; under Linux's default heuristic overcommit an allocation larger than memory
//! and swap is refused, and a refused allocation aborts the process: one small request
//! on the Kafka port killed the broker (found by `server/fuzz`'s `kafka_request`
//! target). With this allocator the reservation succeeds, the decoder fails on the
//! bytes that are not there, the reservation is unmapped, and the connection is
//! closed as for any request that does not decode (`tests/tests/kafka_wire.rs`).
//!
//! Nothing else in the broker allocates anywhere near this much in one piece (frames
//! are at most `max_frame_bytes`, segments are mapped files, not heap), so the broker's
//! own allocations all go to the system allocator as before. What this must never do:
//! hand out memory that is not zeroed where `alloc_zeroed` promised it (fresh anonymous
//! maps are zero), or pass a pointer to the wrong one of the two allocators on free:
//! which one owns a block is decided by its layout's size alone, on every path.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Allocations at least this large are mapped lazily (1 GiB: past any frame,
/// buffer or batch the broker builds, so only an announced-count reservation gets
/// here).
pub const LAZY_ALLOCATION_BYTES: usize = 1 << 30;

/// Alignment an anonymous map always has (the page size is at least this).
const MAP_ALIGN: usize = 4096;

/// The allocator; `brokerd` installs it with `#[global_allocator]`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LazyLargeAllocator;

fn is_lazy(layout: &Layout) -> bool {
    layout.size() >= LAZY_ALLOCATION_BYTES && layout.align() <= MAP_ALIGN
}

unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private map with no address hint has no preconditions.
    let mapped = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if mapped == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        mapped.cast()
    }
}

// SAFETY: every block is freed by the allocator that made it: `is_lazy` of the
// layout, which the caller passes unchanged to `dealloc` and `realloc`, decides both.
unsafe impl GlobalAlloc for LazyLargeAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_lazy(&layout) {
            // SAFETY: see `map`.
            unsafe { map(layout.size()) }
        } else {
            // SAFETY: forwarded with the caller's (valid, non-zero) layout.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_lazy(&layout) {
            // SAFETY: see `map`; a fresh anonymous map reads as zeros.
            unsafe { map(layout.size()) }
        } else {
            // SAFETY: as in `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if is_lazy(&layout) {
            // SAFETY: `block` came from `map` with this size (same layout, same test).
            unsafe { libc::munmap(block.cast(), layout.size()) };
        } else {
            // SAFETY: `block` came from `System` with this layout.
            unsafe { System.dealloc(block, layout) }
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (every call below): `layout` is the block's, `new_size` is non-zero
        // and fits `isize` with `layout.align()`, as `GlobalAlloc::realloc` requires.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_lazy(&layout) && !is_lazy(&new_layout) {
            return unsafe { System.realloc(block, layout, new_size) };
        }
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            unsafe {
                ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_huge_blocks_round_trip_and_huge_ones_cost_no_memory_up_front() {
        let alloc = LazyLargeAllocator;
        let small = Layout::from_size_align(4096, 8).unwrap();
        // 1 TiB: more than any machine's memory and swap, so only a lazy map can
        // hand it out; it is never touched beyond its first and last page here.
        let huge = Layout::from_size_align(1 << 40, 8).unwrap();
        unsafe {
            let a = alloc.alloc(small);
            assert!(!a.is_null());
            a.write_bytes(7, small.size());
            let b = alloc.alloc_zeroed(huge);
            assert!(!b.is_null(), "a lazy reservation is refused");
            assert_eq!(*b, 0);
            assert_eq!(*b.add(huge.size() - 1), 0);
            *b = 1;
            // Growing a small block into the lazy range moves it and keeps its bytes.
            let grown = alloc.realloc(a, small, LAZY_ALLOCATION_BYTES);
            assert!(!grown.is_null());
            assert_eq!(*grown.add(small.size() - 1), 7);
            let grown_layout = Layout::from_size_align(LAZY_ALLOCATION_BYTES, 8).unwrap();
            let shrunk = alloc.realloc(grown, grown_layout, 16);
            assert_eq!(*shrunk.add(15), 7);
            alloc.dealloc(shrunk, Layout::from_size_align(16, 8).unwrap());
            alloc.dealloc(b, huge);
        }
    }
}
