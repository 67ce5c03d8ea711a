//! Hostile input at the door, against the real binary: each finding of the
//! outside audit that is mended, tried again, with normal traffic served
//! during each.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::common::run::{Client, Weft, a01, adt_config};

/// `a01(id, mrn)` with MSH-9 replaced by `msh9`.
fn with_type(id: &str, msh9: &str) -> Vec<u8> {
    String::from_utf8(a01(id, "1"))
        .unwrap()
        .replace("ADT^A01^ADT_A01", msh9)
        .into_bytes()
}

/// Checks a NAK: its MSA-1, ERR-3 and that its text holds `says`.
fn assert_refused(ack: &crate::common::run::Ack, code: &str, err: &str, says: &str) {
    assert_eq!(
        (ack.code.as_str(), ack.error_code.as_str()),
        (code, err),
        "{}",
        ack.raw
    );
    assert!(ack.text.contains(says), "{}", ack.raw);
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
    assert_refused(&ack, "AR", "104", "MSH-10 is 300 characters long");
    assert!(
        ack.raw.contains("MSH^1^10"),
        "the ERR names MSH-10: {}",
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
    assert_refused(
        &c.exchange(&forged),
        "AR",
        "102",
        "MSH-9 holds a control character",
    );
    let huge = with_type("HUGE-1", &format!("ADT^{}", "A".repeat(100_000)));
    let ack = c.exchange(&huge);
    assert_refused(&ack, "AR", "104", "MSH-9 is");
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

/// How long until the peer closes `s` (reads until EOF or error), at most
/// `limit`; `None` if it is still open then.
fn closed_within(s: &mut std::net::TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[test]
fn other_protocols_junk_and_slow_senders_are_cut_off() {
    use std::io::Write;
    let weft = Weft::start(|d| {
        adt_config(d, "after-commit", "").replace(
            "idle_timeout_s = 5\n",
            "idle_timeout_s = 3\nframe_timeout_s = 2\n",
        )
    });

    // An HTTP POST whose body holds a frame (what a web page can send to
    // any port): closed unanswered, its frame never taken.
    let frame = [&[0x0b][..], &a01("SMUGGLED-1", "9"), &[0x1c, 0x0d]].concat();
    let (code, _) = crate::common::curl(&[
        "-X",
        "POST",
        "--data-binary",
        &String::from_utf8_lossy(&frame),
        &format!("http://{}/", weft.addr),
    ]);
    assert_eq!(code, 0, "no HTTP answer");
    // A TLS client on the plain port: closed at once.
    let mut tls = std::net::TcpStream::connect(weft.addr).unwrap();
    tls.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .unwrap();
    assert!(closed_within(&mut tls, Duration::from_secs(2)).is_some());
    // 2 KiB of junk and no frame: closed past the allowance.
    let mut junk = std::net::TcpStream::connect(weft.addr).unwrap();
    junk.write_all(&[b'x'; 2048]).unwrap();
    assert!(closed_within(&mut junk, Duration::from_secs(2)).is_some());
    assert_eq!(weft.client().exchange(&a01("NORMAL-2", "2")).code, "AA");

    // A frame trickling in a byte every 300 ms: the idle timer no longer
    // restarts on each byte; the frame's own deadline (2 s) closes it.
    let mut slow = std::net::TcpStream::connect(weft.addr).unwrap();
    slow.write_all(&[0x0b]).unwrap();
    let started = Instant::now();
    let message = a01("SLOW-1", "3");
    let mut closed = None;
    for b in message.iter().take(30) {
        if slow.write_all(&[*b]).is_err() {
            closed = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let closed = closed
        .or_else(|| closed_within(&mut slow, Duration::from_secs(5)).map(|_| started.elapsed()));
    let closed = closed.expect("the slow frame's connection is closed");
    assert!(closed < Duration::from_secs(4), "closed after {closed:?}");
    // Junk trickling in, a byte every 300 ms, keeps nothing open either.
    let mut trickle = std::net::TcpStream::connect(weft.addr).unwrap();
    let started = Instant::now();
    let mut gone = false;
    for _ in 0..30 {
        if trickle.write_all(b"\n").is_err() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        let mut probe = [0u8; 1];
        trickle.set_nonblocking(true).unwrap();
        if matches!(trickle.read(&mut probe), Ok(0)) {
            gone = true;
            break;
        }
        trickle.set_nonblocking(false).unwrap();
    }
    assert!(gone, "the trickling connection was closed");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    assert_eq!(weft.client().exchange(&a01("NORMAL-3", "2")).code, "AA");
    let log = weft.log_text();
    assert!(log.contains("an HTTP request on an MLLP port"), "{log}");
    assert!(log.contains("not complete within frame_timeout_s"), "{log}");
    assert!(!log.contains("SMUGGLED-1"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while weft.out_files().len() < 2 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let names: Vec<String> = weft
        .out_files()
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains("SMUGGLED") && !n.contains("SLOW")),
        "{names:?}"
    );
}

#[test]
fn a_slow_http_body_gets_408_within_its_deadline() {
    use std::io::Write;
    let weft = Weft::start(|d| {
        adt_config(
            d,
            "after-commit",
            "[sources.web]\nkind = \"http\"\nlisten = \"127.0.0.1:0\"\npath = \"/messages\"\nbody_timeout_s = 2\n",
        )
    });
    let addr = weft.addrs["web"];
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /messages HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/hl7-v2\r\nContent-Length: 200\r\n\r\n"
    )
    .unwrap();
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while started.elapsed() < Duration::from_secs(8) {
        let _ = s.write_all(b"M");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // Others are served meanwhile and after.
    let (code, _) = crate::common::curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/hl7-v2",
        "--data-binary",
        &String::from_utf8(a01("WEB-1", "1")).unwrap(),
        &format!("http://{addr}/messages"),
    ]);
    assert_eq!(code, 202);
}

/// The resident memory of process `pid`, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024.0
}

/// An A01 with an NTE-free OBX-like Z segment holding `size` bytes of text.
fn padded(id: &str, size: usize) -> Vec<u8> {
    let mut m = a01(id, "5");
    m.extend_from_slice(b"ZPI|1|");
    m.extend(std::iter::repeat_n(b'a', size));
    m.push(b'\r');
    m
}

#[test]
fn memory_per_message_and_in_flight_is_bounded() {
    let weft = Weft::start(|d| {
        adt_config(d, "after-commit", "[runtime]\nmax_inflight_mib = 8\n").replace(
            "idle_timeout_s = 5\n",
            "idle_timeout_s = 30\nmax_frame_kib = 8192\n",
        )
    });
    let pid = weft.pid();
    let mut c = weft.client();
    assert_eq!(c.exchange(&a01("WARM-1", "1")).code, "AA");
    let before = rss_mib(pid);

    // 4 MiB of field separators: one String per field cost +158 MiB; now
    // refused by counting, before anything is parsed. Eight at once too.
    let pipes = [b"MSH|".as_slice(), &vec![b'|'; 4 << 20]].concat();
    let ack = c.exchange(&pipes);
    assert_eq!(ack.code, "AR", "{}", ack.raw);
    assert!(ack.text.contains("fields; at most 250000"), "{}", ack.raw);
    let addr = weft.addr;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let pipes = pipes.clone();
            std::thread::spawn(move || Client::connect(addr).exchange(&pipes).code)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "AR");
    }
    // More segments than any message has: refused by counting too.
    let mut segments = a01("SEGS-1", "6");
    for _ in 0..60_000 {
        segments.extend_from_slice(b"ZZZ|\r");
    }
    let ack = c.exchange(&segments);
    assert_eq!(ack.code, "AR", "{}", ack.raw);
    assert!(ack.text.contains("segments; at most 50000"), "{}", ack.raw);
    assert_eq!(ack.control_id, "SEGS-1");
    let after = rss_mib(pid);
    eprintln!("resident memory around nine 4 MiB messages of '|': {before:.1} -> {after:.1} MiB");
    assert!(
        after - before < 64.0,
        "resident memory grew {before:.0} -> {after:.0} MiB"
    );

    // The budget (8 MiB; a 1.5 MiB message counts its bytes, the journal's
    // copy and its parsed form, about 6 MiB): one at a time, the others
    // wait their turn and all are taken.
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let ack = Client::connect(addr).exchange(&padded(&format!("BIG-{i}"), 3 << 19));
                (ack.code, ack.text)
            })
        })
        .collect();
    for t in threads {
        let (code, text) = t.join().unwrap();
        assert_eq!(code, "AA", "{text}");
    }
    // One that could never fit is refused at once, with the reason.
    let ack = c.exchange(&padded("HUGE-2", 5 << 20));
    assert_eq!(ack.code, "AR", "{}", ack.raw);
    assert!(ack.text.contains("max_inflight_mib"), "{}", ack.raw);
    assert_eq!(ack.control_id, "HUGE-2", "MSA-2 still names it");
    assert_eq!(c.exchange(&a01("AFTER-BIG", "1")).code, "AA");
}
