//! Hostile input at the door, against the real binary: each finding of the
//! outside audit that is mended, tried again, with normal traffic served
//! during each.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::run::{Client, Weft, a01, adt_config};

/// `a01(id, mrn)` with MSH-9 replaced by `msh9`.
fn with_type(id: &str, msh9: &str) -> Vec<u8> {
    String::from_utf8(a01(id, "1"))
        .unwrap()
        .replace("ADT^A01^ADT_A01", msh9)
        .into_bytes()
}

#[test]
fn header_fields_weft_files_messages_under_are_capped_and_clean() {
    let weft = Weft::start(|d| adt_config(d, "after-transform", ""));
    let mut c = weft.client();

    // A 300-character MSH-10 used to reach the file destination's name,
    // fail as "File name too long" and be retried for 72 hours, holding
    // every later message of that patient: now it is refused at the door.
    let long = "C".repeat(300);
    let ack = c.exchange(&a01(&long, "7"));
    assert_eq!(
        (ack.code.as_str(), ack.error_code.as_str()),
        ("AR", "104"),
        "{}",
        ack.raw
    );
    assert!(
        ack.raw.contains("MSH^1^10"),
        "the ERR names MSH-10: {}",
        ack.raw
    );
    assert!(
        ack.text.contains("MSH-10 is 300 characters long"),
        "{}",
        ack.raw
    );
    // The longest allowed still makes a valid file, and the next message
    // of the same patient is not held back.
    let longest = "D".repeat(199);
    assert_eq!(c.exchange(&a01(&longest, "7")).code, "AA");
    assert_eq!(c.exchange(&a01("AFTER-LONG", "7")).code, "AA");

    // An escaped line break in MSH-9 (`\X0A\`) decodes to a real one, which
    // forged a log line; a 100 KB MSH-9 made a 100 KB WARN line.
    let forged = with_type(
        "FORGE-1",
        "ADT^A01\\X0A\\2026-01-01T00:00:00Z  INFO forged: all is well",
    );
    let ack = c.exchange(&forged);
    assert_eq!(
        (ack.code.as_str(), ack.error_code.as_str()),
        ("AR", "102"),
        "{}",
        ack.raw
    );
    assert!(
        ack.text.contains("MSH-9 holds a control character"),
        "{}",
        ack.raw
    );
    let huge = with_type("HUGE-1", &format!("ADT^{}", "A".repeat(100_000)));
    let ack = c.exchange(&huge);
    assert_eq!(
        (ack.code.as_str(), ack.error_code.as_str()),
        ("AR", "104"),
        "{}",
        ack.raw
    );
    assert!(
        ack.raw.len() < 2_000,
        "the NAK does not echo it: {} bytes",
        ack.raw.len()
    );
    assert_eq!(c.exchange(&a01("NORMAL-1", "8")).code, "AA");

    let log = weft.log_text();
    assert!(!log.contains("forged: all is well"), "{log}");
    let longest_line = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest_line < 2_000, "a log line of {longest_line} bytes");
    assert!(
        log.contains("field=\"MSH-10\"") || log.contains("field=MSH-10"),
        "{log}"
    );

    // The allowed files were written; names stay within the file system's.
    let deadline = Instant::now() + Duration::from_secs(10);
    while weft.out_files().len() < 3 {
        assert!(Instant::now() < deadline, "{:?}", weft.out_files());
        std::thread::sleep(Duration::from_millis(50));
    }
    for f in weft.out_files() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.len() < 255, "{name}");
    }
}

#[test]
fn connections_past_the_cap_are_closed_and_the_rest_are_served() {
    let weft = Weft::start(|d| {
        adt_config(d, "after-commit", "").replace(
            "idle_timeout_s = 5\n",
            "idle_timeout_s = 30\nmax_connections = 20\n",
        )
    });
    // 20 idle connections hold every slot.
    let idle: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(weft.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // The 21st is closed at once, without an answer.
    let mut extra = std::net::TcpStream::connect(weft.addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    let started = Instant::now();
    let n = extra.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        weft.wait_for_log("maximum of open connections", Duration::from_secs(5)),
        "{}",
        weft.log_text()
    );
    // Closing idle ones frees their slots for real senders.
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    let mut c = Client::connect(weft.addr);
    assert_eq!(c.exchange(&a01("CAP-1", "1")).code, "AA");
}
