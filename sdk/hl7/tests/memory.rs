//! What a parsed message costs in memory, counted by the allocator: the
//! parser keeps offsets into the received text instead of a string per
//! field, so a message of nothing but field separators cannot make the
//! receiver hold many times its size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use weft_hl7::Message;

/// The system allocator, counting this thread's allocations and live bytes.
struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(allocs: usize, bytes: isize) {
    // `try_with`: the thread's counters may already be gone at its exit.
    let _ = ALLOCS.try_with(|a| a.set(a.get() + allocs));
    let _ = LIVE.try_with(|l| l.set(l.get() + bytes));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1, layout.size() as isize);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, -(layout.size() as isize));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(1, new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made and bytes kept by a parse of `bytes`, with the message.
fn measure(bytes: &[u8]) -> (usize, usize, Message) {
    let allocs = ALLOCS.with(Cell::get);
    let live = LIVE.with(Cell::get);
    let m = Message::parse(bytes).expect("parses");
    let kept = usize::try_from(LIVE.with(Cell::get) - live).unwrap_or(0);
    (ALLOCS.with(Cell::get) - allocs, kept, m)
}

#[test]
fn a_parse_keeps_offsets_not_copies() {
    // 4 MiB of field separators: 4 million empty fields. A string per field
    // kept 24 times the message's size; offsets keep the text plus four
    // bytes a field.
    let mut flood = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID".to_vec();
    flood.resize(4 << 20, b'|');
    let (_, kept, m) = measure(&flood);
    assert_eq!(m.segments()[1].field_count(), (4 << 20) - 46);
    assert!(
        kept <= 5 * flood.len() + (64 << 10),
        "a 4 MiB separator flood keeps {kept} bytes"
    );
    let fields: usize = m.segments().iter().map(|s| s.field_count()).sum();
    assert!(kept <= Message::parsed_size_bound(flood.len(), m.segments().len(), fields));

    // Every corpus message: a handful of allocations per segment at most,
    // whatever the number of fields, and the message round-trips.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus/hl7v2/fhir-converter");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "hl7") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        let Ok(parsed) = Message::parse(&bytes) else {
            continue;
        };
        let fields: usize = parsed.segments().iter().map(|s| s.field_count()).sum();
        let (allocs, kept, m) = measure(&bytes);
        let segments = m.segments().len();
        assert!(
            allocs <= 2 * segments + 8,
            "{}: {allocs} allocations for {segments} segments ({fields} fields)",
            path.display()
        );
        assert!(
            kept <= Message::parsed_size_bound(bytes.len(), segments, fields),
            "{}: keeps {kept} bytes for {} received",
            path.display(),
            bytes.len()
        );
        assert_eq!(m.to_bytes(), bytes, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} corpus messages");
}
