//! `weft send`: an MLLP client. Sends each message, waits for its ACK,
//! prints one line per message, exits non-zero unless every ACK is AA/CA.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft::mllp::{self, Decoder, Frame, framed};

/// Arguments of `weft send`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The MLLP listener to send to.
    #[arg(long, default_value = "127.0.0.1:2575")]
    to: String,
    /// How long to wait for each ACK, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_s: u64,
    /// Speak MLLP over TLS, trusting the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// Speak MLLP over TLS, trusting the system's CA certificates.
    #[arg(long, conflicts_with = "tls_ca")]
    tls: bool,
    /// A client certificate (PEM) to present, for a listener that asks for
    /// one (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry, when it is not the
    /// host in --to.
    #[arg(long, value_name = "NAME")]
    tls_server_name: Option<String>,
    /// Files holding one or more messages (split where a line starts with
    /// MSH), or - for standard input.
    #[arg(default_value = "-")]
    files: Vec<String>,
}

/// Splits a file's bytes into messages: a new message starts wherever a
/// segment starts with `MSH`. Line feeds become the carriage returns HL7
/// ends segments with. A capture of MLLP frames splits the same way: a
/// start block (`0x0B`) at the start of a line before `MSH` and an end
/// block (`0x1C`) at the end of a message are framing, not content; framing
/// bytes anywhere else stay in the message, and sending it is refused.
pub fn split_messages(data: &[u8]) -> Vec<Vec<u8>> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let line_start = |i: usize| i == 0 || matches!(data[i - 1], b'\r' | b'\n');
    let mut starts = Vec::new();
    for i in 0..data.len() {
        if data[i..].starts_with(b"MSH")
            && (line_start(i) || (data[i - 1] == mllp::SB && line_start(i - 1)))
        {
            starts.push(i);
        }
    }
    let newline = |b: &u8| matches!(b, b'\r' | b'\n');
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let mut end = match starts.get(k + 1) {
                Some(&next) if data[next - 1] == mllp::SB => next - 1,
                Some(&next) => next,
                None => data.len(),
            };
            while end > s && newline(&data[end - 1]) {
                end -= 1;
            }
            if end > s && data[end - 1] == mllp::EB {
                end -= 1;
            }
            let mut segments: Vec<&[u8]> = data[s..end]
                .split(|&b| b == b'\r' || b == b'\n')
                .filter(|seg| !seg.is_empty())
                .collect();
            if segments.is_empty() {
                segments.push(&data[s..end]);
            }
            let mut m = segments.join(&b'\r');
            m.push(b'\r');
            m
        })
        .collect()
}

/// Sends every message and reports each ACK.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    for file in &args.files {
        let data = super::read_input(file)?;
        let found = split_messages(&data);
        if found.is_empty() {
            eprintln!("{file}: no message (no segment starts with MSH)");
        }
        let many = found.len() > 1;
        for (i, m) in found.into_iter().enumerate() {
            let label = if many {
                format!("{file}#{}", i + 1)
            } else {
                file.clone()
            };
            messages.push((label, m));
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let all_ok = runtime.block_on(send_all(&args, &messages))?;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_ERROR)
    })
}

/// A plain or TLS connection.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// Connects to `--to`, over TLS when a `--tls*` option asks for it.
async fn connect(args: &Args) -> anyhow::Result<Box<dyn Stream>> {
    let stream = tokio::net::TcpStream::connect(&args.to)
        .await
        .with_context(|| format!("connecting to {}", args.to))?;
    let _ = stream.set_nodelay(true);
    if !args.tls && args.tls_ca.is_none() && args.tls_cert.is_none() {
        return Ok(Box::new(stream));
    }
    let settings = weft::tls::ClientTls {
        ca: args.tls_ca.clone(),
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
        server_name: args.tls_server_name.clone(),
        fingerprint: String::new(),
    };
    let config = weft::tls::client_config(&settings)?;
    let name = weft::tls::server_name(&settings, &args.to)?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .with_context(|| format!("TLS handshake with {}", args.to))?;
    Ok(Box::new(tls))
}

async fn send_all(args: &Args, messages: &[(String, Vec<u8>)]) -> anyhow::Result<bool> {
    let mut stream = connect(args).await?;
    let bar = (messages.len() > 20 && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(messages.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut decoder = Decoder::new(64 * 1024 * 1024);
    let mut buf = BytesMut::with_capacity(4096);
    let mut all_ok = true;
    for (label, message) in messages {
        let line =
            match exchange(&mut stream, &mut decoder, &mut buf, message, args.timeout_s).await {
                Ok(ack) => {
                    let (code, msa2, text) = read_ack(&ack);
                    let ok = code == "AA" || code == "CA";
                    all_ok &= ok;
                    if text.is_empty() {
                        format!("{label}\t{code}\t{msa2}")
                    } else {
                        format!("{label}\t{code}\t{msa2}\t{text}")
                    }
                }
                Err(e) => {
                    all_ok = false;
                    format!("{label}\tERROR\t\t{e:#}")
                }
            };
        match &bar {
            Some(b) => {
                b.println(&line);
                b.inc(1);
            }
            None => println!("{line}"),
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(all_ok)
}

async fn exchange(
    stream: &mut Box<dyn Stream>,
    decoder: &mut Decoder,
    buf: &mut BytesMut,
    message: &[u8],
    timeout_s: u64,
) -> anyhow::Result<Vec<u8>> {
    // Refused before a byte is sent: the connection stays usable.
    let frame = framed(message)?;
    stream.write_all(&frame).await.context("sending")?;
    let wait = async {
        loop {
            if let Some(frame) = decoder.decode(buf) {
                return match frame {
                    Frame::Message(m) => Ok(m.to_vec()),
                    Frame::TooLarge { limit } => {
                        Err(anyhow::anyhow!("ACK larger than {limit} bytes"))
                    }
                };
            }
            if stream.read_buf(buf).await.context("reading the ACK")? == 0 {
                anyhow::bail!("connection closed before the ACK");
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(timeout_s), wait)
        .await
        .map_err(|_| anyhow::anyhow!("no ACK within {timeout_s} s"))?
}

/// MSA-1, MSA-2 and the error text (ERR-8, else MSA-3) of an ACK.
fn read_ack(ack: &[u8]) -> (String, String, String) {
    match weft_hl7::Message::parse(ack) {
        Ok(m) => {
            let get = |p: &str| m.get(p).ok().flatten().unwrap_or_default();
            let text = Some(get("ERR-8"))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| get("MSA-3"));
            (get("MSA-1"), get("MSA-2"), text)
        }
        Err(e) => ("??".into(), String::new(), format!("unreadable ACK: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_files_on_msh() {
        let data = b"\xEF\xBB\xBFMSH|^~\\&|A\nPID|1\n\nMSH|^~\\&|B\r\nPID|2\r\nNTE|MSH here\r\n";
        let m = split_messages(data);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], b"MSH|^~\\&|A\rPID|1\r");
        assert_eq!(m[1], b"MSH|^~\\&|B\rPID|2\rNTE|MSH here\r");
        assert!(split_messages(b"hello").is_empty());
    }

    #[test]
    fn splits_mllp_captures_and_keeps_inner_framing_bytes() {
        let data = b"\x0bMSH|^~\\&|A\rPID|1\r\x1c\r\x0bMSH|^~\\&|B\rPID|2\x1c\rNTE|x\r\x1c\r";
        let m = split_messages(data);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], b"MSH|^~\\&|A\rPID|1\r");
        // An end block inside a message is content: `weft send` refuses it.
        assert_eq!(m[1], b"MSH|^~\\&|B\rPID|2\x1c\rNTE|x\r");
        assert!(mllp::check(&m[1]).is_err());
        // Framing bytes mid-segment do not start a message: one message,
        // refused.
        let m = split_messages(b"MSH|^~\\&|A\rPID|1|x\x1c\x0bMSH|^~\\&|FORGED\r");
        assert_eq!(m.len(), 1);
        assert!(mllp::check(&m[0]).is_err());
    }
}
