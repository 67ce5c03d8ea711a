//! The MLLP decoder on any bytes, cut into any chunks (the first two bytes
//! choose the frame cap and the chunk size): never a panic, never a frame
//! over the cap, and a frame re-encoded decodes to the same message.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use weft_mllp::{Decoder, Frame, framed};

fuzz_target!(|data: &[u8]| {
    let [cap, chunk, rest @ ..] = data else {
        return;
    };
    let max_frame = usize::from(*cap) * 64 + 16;
    let chunk = usize::from(*chunk).max(1);
    let mut decoder = Decoder::new(max_frame);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(frame) = decoder.decode(&mut buf) {
            frames.push(frame);
        }
    }
    for frame in frames {
        if let Frame::Message(m) = frame {
            assert!(
                m.len() <= max_frame,
                "a frame of {} bytes past the cap",
                m.len()
            );
            if let Ok(wire) = framed(&m) {
                let mut again = Decoder::new(max_frame);
                let mut b = BytesMut::from(&wire[..]);
                match again.decode(&mut b) {
                    Some(Frame::Message(back)) => assert_eq!(back, m),
                    other => panic!("re-encoded frame decoded as {other:?}"),
                }
            }
        }
    }
});
