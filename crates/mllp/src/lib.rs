//! MLLP framing (`0x0B` message `0x1C 0x0D`), shared by the MLLP source, the
//! MLLP destination and `weft send`.
//!
//! The decoder is forgiving where the wire is messy and strict where it
//! matters: bytes before a start block are discarded, a new start block
//! inside an open frame drops the partial frame and starts over, a frame
//! that grows past the limit is an error (the caller NAKs and closes), and a
//! lone `0x1C` ends a frame even when the sender forgets the `0x0D`.

use bytes::{Buf, Bytes, BytesMut};

/// Start block.
pub const SB: u8 = 0x0B;
/// End block.
pub const EB: u8 = 0x1C;
/// Carriage return after the end block.
pub const CR: u8 = 0x0D;

/// What the decoder found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete message.
    Message(Bytes),
    /// The open frame passed the size limit.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// Counters of what the decoder threw away (for the log; never content).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Discarded {
    /// Bytes seen outside any frame.
    pub junk_bytes: usize,
    /// Frames abandoned because a new start block arrived.
    pub partial_frames: usize,
}

/// An incremental MLLP decoder.
#[derive(Debug)]
pub struct Decoder {
    max_frame: usize,
    in_frame: bool,
    /// How far into the open frame has been scanned already.
    scanned: usize,
    /// A frame ended with a bare `0x1C` at the end of the buffer: skip a
    /// `0x0D` if it comes next.
    skip_cr: bool,
    discarded: Discarded,
}

impl Decoder {
    /// A decoder refusing frames larger than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Decoder {
        Decoder {
            max_frame,
            in_frame: false,
            scanned: 0,
            skip_cr: false,
            discarded: Discarded::default(),
        }
    }

    /// What has been discarded so far.
    pub fn discarded(&self) -> Discarded {
        self.discarded
    }

    /// True while a frame is open (started, not ended).
    pub fn in_frame(&self) -> bool {
        self.in_frame
    }

    /// Takes the next frame out of `buf`, if a whole one is there.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        loop {
            if self.skip_cr && !buf.is_empty() {
                if buf[0] == CR {
                    buf.advance(1);
                }
                self.skip_cr = false;
            }
            if !self.in_frame {
                match buf.iter().position(|&b| b == SB) {
                    Some(i) => {
                        self.discarded.junk_bytes += i;
                        buf.advance(i + 1);
                        self.in_frame = true;
                        self.scanned = 0;
                    }
                    None => {
                        self.discarded.junk_bytes += buf.len();
                        buf.clear();
                        return None;
                    }
                }
            }
            let found = buf[self.scanned..]
                .iter()
                .position(|&b| b == SB || b == EB)
                .map(|i| self.scanned + i);
            match found {
                Some(i) if buf[i] == SB => {
                    // A new frame starts inside the open one: resync on it.
                    self.discarded.partial_frames += 1;
                    buf.advance(i + 1);
                    self.scanned = 0;
                }
                Some(i) => {
                    if i > self.max_frame {
                        return Some(self.too_large(buf));
                    }
                    let body = buf.split_to(i).freeze();
                    buf.advance(1);
                    if buf.is_empty() {
                        self.skip_cr = true;
                    } else if buf[0] == CR {
                        buf.advance(1);
                    }
                    self.in_frame = false;
                    self.scanned = 0;
                    return Some(Frame::Message(body));
                }
                None => {
                    if buf.len() > self.max_frame {
                        return Some(self.too_large(buf));
                    }
                    self.scanned = buf.len();
                    return None;
                }
            }
        }
    }

    fn too_large(&mut self, buf: &mut BytesMut) -> Frame {
        buf.clear();
        self.in_frame = false;
        self.scanned = 0;
        Frame::TooLarge {
            limit: self.max_frame,
        }
    }
}

/// A message that MLLP cannot carry: it holds a start or end block byte,
/// which would cut the frame short and pass what follows to the receiver as
/// another message (frame smuggling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the message holds an MLLP {} byte (0x{byte:02X}) at byte {offset}: MLLP cannot carry it (it would split the message and smuggle the rest in as another)",
    if *byte == SB { "start-block" } else { "end-block" }
)]
pub struct FramingError {
    /// The byte: [`SB`] or [`EB`].
    pub byte: u8,
    /// Where it is in the message (0-based).
    pub offset: usize,
}

/// Checks that MLLP can carry `message`: no start-block (`0x0B`) or
/// end-block (`0x1C`) byte anywhere in it.
pub fn check(message: &[u8]) -> Result<(), FramingError> {
    match message.iter().position(|&b| b == SB || b == EB) {
        Some(offset) => Err(FramingError {
            byte: message[offset],
            offset,
        }),
        None => Ok(()),
    }
}

/// Wraps a message in an MLLP frame; refuses one MLLP cannot carry.
pub fn encode(message: &[u8], out: &mut BytesMut) -> Result<(), FramingError> {
    check(message)?;
    out.reserve(message.len() + 3);
    out.extend_from_slice(&[SB]);
    out.extend_from_slice(message);
    out.extend_from_slice(&[EB, CR]);
    Ok(())
}

/// A message in an MLLP frame, as one buffer; refuses one MLLP cannot
/// carry.
pub fn framed(message: &[u8]) -> Result<Vec<u8>, FramingError> {
    let mut out = BytesMut::with_capacity(message.len() + 3);
    encode(message, &mut out)?;
    Ok(out.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Decoder, buf: &mut BytesMut) -> Vec<Frame> {
        std::iter::from_fn(|| d.decode(buf)).collect()
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn pipelined_frames_and_junk() {
        let mut d = Decoder::new(1024);
        let mut buf = BytesMut::from(&b"junk\x0bA\x1c\x0d\x0bB\x1c\x0d\r\n\x0bC"[..]);
        assert_eq!(all(&mut d, &mut buf), vec![msg("A"), msg("B")]);
        buf.extend_from_slice(b"C\x1c\x0d");
        assert_eq!(all(&mut d, &mut buf), vec![msg("CC")]);
        assert_eq!(d.discarded().junk_bytes, 6);
    }

    #[test]
    fn byte_by_byte() {
        let mut d = Decoder::new(1024);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in b"\x0bMSH|x\x1c\x0d\x0bMSH|y\x1c\x0d" {
            buf.extend_from_slice(&[b]);
            got.extend(all(&mut d, &mut buf));
        }
        assert_eq!(got, vec![msg("MSH|x"), msg("MSH|y")]);
        assert_eq!(d.discarded(), Discarded::default());
    }

    #[test]
    fn new_start_block_resyncs() {
        let mut d = Decoder::new(1024);
        let mut buf = BytesMut::from(&b"\x0bpartial\x0bwhole\x1c\x0d"[..]);
        assert_eq!(all(&mut d, &mut buf), vec![msg("whole")]);
        assert_eq!(d.discarded().partial_frames, 1);
    }

    #[test]
    fn bare_end_block_ends_a_frame() {
        let mut d = Decoder::new(1024);
        let mut buf = BytesMut::from(&b"\x0bA\x1c"[..]);
        assert_eq!(all(&mut d, &mut buf), vec![msg("A")]);
        buf.extend_from_slice(b"\x0d\x0bB\x1c\x0d");
        assert_eq!(all(&mut d, &mut buf), vec![msg("B")]);
        assert_eq!(d.discarded().junk_bytes, 0);
    }

    #[test]
    fn too_large_frame() {
        let mut d = Decoder::new(4);
        let mut buf = BytesMut::from(&b"\x0b12345"[..]);
        assert_eq!(d.decode(&mut buf), Some(Frame::TooLarge { limit: 4 }));
        let mut buf = BytesMut::from(&b"\x0b1234\x1c\x0d"[..]);
        assert_eq!(d.decode(&mut buf), Some(msg("1234")));
    }

    #[test]
    fn encode_round_trip() {
        let mut d = Decoder::new(1024);
        let mut buf = BytesMut::from(&framed(b"MSH|^~\\&").unwrap()[..]);
        assert_eq!(d.decode(&mut buf), Some(msg("MSH|^~\\&")));
        assert!(buf.is_empty());
    }

    #[test]
    fn framing_bytes_inside_a_message_are_refused() {
        let smuggling = b"MSH|^~\\&|A\r\x1c\r\x0bMSH|^~\\&|FORGED\r";
        let e = framed(smuggling).unwrap_err();
        assert_eq!(
            e,
            FramingError {
                byte: EB,
                offset: 11
            }
        );
        assert!(
            e.to_string().contains("end-block byte (0x1C) at byte 11"),
            "{e}"
        );
        let e = check(b"PID|1||\x0b").unwrap_err();
        assert_eq!(e.byte, SB);
        assert!(check(b"MSH|^~\\&|ok\r").is_ok());
    }
}
