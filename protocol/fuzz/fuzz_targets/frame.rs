//! Frame decoding: arbitrary bytes through the sans-IO frame decoder and the typed
//! message decoder, plus every body decoder directly. Anything that decodes must
//! re-encode to exactly the bytes it came from (the encoding is canonical).
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use protocol::{FrameDecoder, Message, OpCode, Request, Response};

/// Small, so that the fuzzer also reaches the too-large path.
const FUZZ_MAX_FRAME_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let decoder = FrameDecoder::with_max_frame_bytes(FUZZ_MAX_FRAME_BYTES);
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.clone();
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => {
                let consumed = before.len() - buf.len();
                let version = frame.header.version;
                if let Ok(msg) = Message::decode(frame) {
                    let mut again = BytesMut::new();
                    msg.encode(version, &mut again)
                        .expect("a decoded message re-encodes");
                    assert_eq!(&again[..], &before[..consumed], "re-encoding differs");
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = e.error_response();
                if e.is_fatal() {
                    break;
                }
            }
        }
    }

    // Body decoders directly, with the op chosen by the first byte.
    if let Some((&selector, body)) = data.split_first() {
        let op = OpCode::ALL[usize::from(selector) % OpCode::ALL.len()];
        let body = Bytes::copy_from_slice(body);
        if let Ok(request) = Request::decode_body(op, body.clone()) {
            let mut again = BytesMut::new();
            request.encode_body(&mut again).expect("re-encodes");
            assert_eq!(&again[..], &body[..]);
        }
        if let Ok(response) = Response::decode_body(op, body.clone()) {
            let mut again = BytesMut::new();
            response.encode_body(&mut again).expect("re-encodes");
            assert_eq!(&again[..], &body[..]);
        }
    }
});
