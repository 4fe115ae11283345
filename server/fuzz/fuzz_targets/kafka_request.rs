//! The Kafka listener's request path: arbitrary bytes through the frame splitter and
//! the request parser (`kafka-protocol`'s decoders behind our header and version
//! checks). Nothing may panic, no frame may exceed the limit, and the splitter may
//! never hold more than a frame's worth beyond its input. brokerd's allocator is
//! installed as in brokerd, so that the crate's reservations for announced counts
//! (`server/src/lazy_alloc.rs`) cost address space here too instead of stopping the
//! fuzzer at the first one as out-of-memory.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use server::kafka::frame::next_frame;
use server::kafka::request::parse;

#[global_allocator]
static ALLOCATOR: server::lazy_alloc::LazyLargeAllocator = server::lazy_alloc::LazyLargeAllocator;

/// Small, so that the fuzzer also reaches the too-large path.
const FUZZ_MAX_REQUEST_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = next_frame(&mut buf, FUZZ_MAX_REQUEST_BYTES) {
        assert!(frame.len() <= FUZZ_MAX_REQUEST_BYTES, "a frame past the limit");
        let _ = parse(frame);
    }
});
