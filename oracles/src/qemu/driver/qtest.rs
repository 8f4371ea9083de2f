//! qtest client over a unix socket. Commands are collected in a [`Batch`] and sent in one
//! socket write (5-7x cheaper per command than one round trip each); replies are read with
//! a timeout. Asynchronous `IRQ ...` lines are skipped.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::error::QemuError;

/// A batch is flushed in pieces so that QEMU's replies never exceed this many bytes while
/// we are still writing (QEMU blocks on a full socket and would stop reading ours).
const REPLY_BYTES_PER_FLUSH: usize = 32 * 1024;
/// ... nor this many replies: QEMU sends each reply on its own, and the socket charges
/// every small send its buffer overhead (about 1 KiB), so a few hundred `OK`s fill it.
/// Batches of many small writes (word uploads) hung QEMU without this bound.
const REPLIES_PER_FLUSH: usize = 128;

/// Deferred commands are sent on their own once they hold this many bytes (inputs that
/// never probe would otherwise let them grow without bound).
pub const DEFERRED_BYTES: usize = 256 << 10;

/// Commands to send in one go, in order.
#[derive(Default)]
pub struct Batch {
    text: String,
    /// End offset in `text` of each command.
    ends: Vec<usize>,
    /// The most bytes each command's reply may take.
    reply_bytes: Vec<usize>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn push(&mut self, reply_bytes: usize, f: impl FnOnce(&mut String)) -> usize {
        f(&mut self.text);
        self.text.push('\n');
        self.ends.push(self.text.len());
        self.reply_bytes.push(reply_bytes + 4);
        self.ends.len() - 1
    }

    /// Command indices after which the batch is flushed and the replies read (the last
    /// command's included), bounding the replies in flight in count and bytes.
    fn cuts(&self) -> Vec<usize> {
        let mut cuts = Vec::new();
        let (mut n, mut bytes) = (0, 0);
        for (i, r) in self.reply_bytes.iter().enumerate() {
            n += 1;
            bytes += r;
            if n >= REPLIES_PER_FLUSH || bytes >= REPLY_BYTES_PER_FLUSH || i + 1 == self.len() {
                cuts.push(i);
                (n, bytes) = (0, 0);
            }
        }
        cuts
    }

    pub fn writel(&mut self, addr: u64, val: u32) -> usize {
        self.push(0, |t| write!(t, "writel {addr:#x} {val:#x}").unwrap())
    }

    pub fn writeq(&mut self, addr: u64, val: u64) -> usize {
        self.push(0, |t| write!(t, "writeq {addr:#x} {val:#x}").unwrap())
    }

    pub fn readl(&mut self, addr: u64) -> usize {
        self.push(24, |t| write!(t, "readl {addr:#x}").unwrap())
    }

    pub fn readq(&mut self, addr: u64) -> usize {
        self.push(24, |t| write!(t, "readq {addr:#x}").unwrap())
    }

    /// `write ADDR LEN 0xHEX` (nothing for an empty slice).
    pub fn write(&mut self, addr: u64, bytes: &[u8]) {
        for (i, chunk) in bytes.chunks(1 << 16).enumerate() {
            let a = addr + (i << 16) as u64;
            self.push(0, |t| {
                write!(t, "write {a:#x} {:#x} 0x", chunk.len()).unwrap();
                push_hex(t, chunk);
            });
        }
    }

    /// `read ADDR LEN`; the reply carries `2 * len` hex digits.
    pub fn read(&mut self, addr: u64, len: usize) -> usize {
        self.push(2 * len + 8, |t| {
            write!(t, "read {addr:#x} {len:#x}").unwrap()
        })
    }

    pub fn memset(&mut self, addr: u64, len: u64, byte: u8) -> usize {
        self.push(0, |t| {
            write!(t, "memset {addr:#x} {len:#x} {byte:#x}").unwrap()
        })
    }

    fn command(&self, idx: usize) -> &str {
        let start = if idx == 0 { 0 } else { self.ends[idx - 1] };
        self.text[start..self.ends[idx]].trim_end()
    }
}

/// Hex-encodes through a stack buffer, one `push_str` per 512 bytes: table uploads are
/// most of what qtest carries, and per-character pushes showed at the top of a profile of
/// the (ASan-instrumented) qemu_diff target.
fn push_hex(t: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    t.reserve(bytes.len() * 2);
    let mut buf = [0u8; 1024];
    for chunk in bytes.chunks(buf.len() / 2) {
        for (i, b) in chunk.iter().enumerate() {
            buf[2 * i] = DIGITS[(b >> 4) as usize];
            buf[2 * i + 1] = DIGITS[(b & 15) as usize];
        }
        t.push_str(std::str::from_utf8(&buf[..2 * chunk.len()]).expect("hex digits are ASCII"));
    }
}

/// The payload after `OK` of each command's reply, all in one string (one allocation per
/// batch, not two per reply: the sanitizer builds pay for every one).
pub struct Replies {
    text: String,
    /// Range in `text` of each command's payload, in order.
    spans: Vec<(usize, usize)>,
}

impl Batch {
    /// Appends `other`'s commands after this batch's.
    fn extend(&mut self, other: &Batch) {
        let base = self.text.len();
        self.text.push_str(&other.text);
        self.ends.extend(other.ends.iter().map(|e| e + base));
        self.reply_bytes.extend_from_slice(&other.reply_bytes);
    }
}

impl Replies {
    fn payload(&self, idx: usize) -> &str {
        let (a, b) = self.spans[idx];
        &self.text[a..b]
    }

    /// Keeps the replies `range` (by index), renumbered from 0.
    fn keep(mut self, range: std::ops::Range<usize>) -> Replies {
        self.spans = self.spans[range].to_vec();
        self
    }

    /// The value of a `readl`/`readq` reply.
    pub fn value(&self, idx: usize) -> Result<u64, QemuError> {
        let p = self.payload(idx).trim();
        let hex = p
            .strip_prefix("0x")
            .ok_or_else(|| QemuError::Protocol(format!("expected a value, got {p:?}")))?;
        u64::from_str_radix(hex, 16).map_err(|_| QemuError::Protocol(format!("bad value {p:?}")))
    }

    /// The bytes of a `read` reply.
    pub fn bytes(&self, idx: usize) -> Result<Vec<u8>, QemuError> {
        let p = self.payload(idx).trim();
        let hex = p
            .strip_prefix("0x")
            .ok_or_else(|| QemuError::Protocol(format!("expected bytes, got {p:?}")))?
            .as_bytes();
        if hex.len() % 2 != 0 {
            return Err(QemuError::Protocol(format!("odd hex length in {p:?}")));
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        hex.chunks_exact(2)
            .map(|d| {
                digit(d[0])
                    .zip(digit(d[1]))
                    .map(|(h, l)| h << 4 | l)
                    .ok_or_else(|| QemuError::Protocol(format!("bad hex in {p:?}")))
            })
            .collect()
    }
}

/// The connection to one QEMU's qtest socket.
pub struct QtestClient {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    timeout: Duration,
    line: String,
    /// Commands whose replies carry nothing (memory writes), held back to travel in front
    /// of the next batch: one round trip fewer each time.
    deferred: Batch,
    /// Socket round trips: sends whose replies were waited for.
    round_trips: u64,
    /// Bytes of commands sent.
    bytes_sent: u64,
}

impl QtestClient {
    pub fn new(stream: UnixStream, timeout: Duration) -> std::io::Result<QtestClient> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let reader = BufReader::with_capacity(1 << 16, stream.try_clone()?);
        Ok(QtestClient {
            writer: stream,
            reader,
            timeout,
            line: String::new(),
            deferred: Batch::new(),
            round_trips: 0,
            bytes_sent: 0,
        })
    }

    /// Socket round trips so far (each wait for replies counts once).
    pub fn round_trips(&self) -> u64 {
        self.round_trips
    }

    /// Bytes of commands sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Queues `batch` (commands whose replies are only `OK`, e.g. memory writes) to be sent
    /// in front of the next [`QtestClient::run`]; a `FAIL` among them fails that run. What
    /// is queued is sent at once when it grows past [`DEFERRED_BYTES`].
    pub fn defer(&mut self, batch: &Batch) -> Result<(), QemuError> {
        self.deferred.extend(batch);
        if self.deferred.text.len() > DEFERRED_BYTES {
            self.run(&Batch::new(), "deferred writes")?;
        }
        Ok(())
    }

    /// Sends the batch and returns every reply; a `FAIL` reply is a protocol error naming
    /// the command. `what` names the operation in timeout and death errors.
    pub fn run(&mut self, batch: &Batch, what: &str) -> Result<Replies, QemuError> {
        if self.deferred.is_empty() {
            return self.run_now(batch, what);
        }
        let mut all = std::mem::take(&mut self.deferred);
        let skip = all.len();
        all.extend(batch);
        let r = self.run_now(&all, what)?;
        let n = r.spans.len();
        Ok(r.keep(skip..n))
    }

    /// Like [`QtestClient::run`], with `tail` sent after `batch` in the same round trip;
    /// returns the replies of `batch` and of `tail` apart (indices as each batch gave them).
    pub fn run_with_tail(
        &mut self,
        batch: &Batch,
        tail: &Batch,
        what: &str,
    ) -> Result<(Replies, Replies), QemuError> {
        let mut all = std::mem::take(&mut self.deferred);
        let skip = all.len();
        all.extend(batch);
        let split = all.len();
        all.extend(tail);
        let r = self.run_now(&all, what)?;
        let from = r.spans.get(split).map_or(r.text.len(), |s| s.0);
        let t = Replies {
            text: r.text[from..].to_string(),
            spans: r.spans[split..]
                .iter()
                .map(|&(a, b)| (a - from, b - from))
                .collect(),
        };
        Ok((r.keep(skip..split), t))
    }

    fn run_now(&mut self, batch: &Batch, what: &str) -> Result<Replies, QemuError> {
        let mut text = String::new();
        let mut spans = Vec::with_capacity(batch.len());
        let mut start = 0;
        for last in batch.cuts() {
            let from = if start == 0 { 0 } else { batch.ends[start - 1] };
            let to = batch.ends[last];
            self.send(&batch.text.as_bytes()[from..to], what)?;
            self.round_trips += 1;
            self.bytes_sent += (to - from) as u64;
            for idx in start..=last {
                self.read_reply(what)?;
                if let Some(rest) = self.line.strip_prefix("OK") {
                    let rest = rest.trim();
                    spans.push((text.len(), text.len() + rest.len()));
                    text.push_str(rest);
                } else {
                    let line = std::mem::take(&mut self.line);
                    return Err(QemuError::Protocol(format!(
                        "`{}` answered {:?} during {what}",
                        batch.command(idx),
                        line.trim()
                    )));
                }
            }
            start = last + 1;
        }
        Ok(Replies { text, spans })
    }

    fn send(&mut self, bytes: &[u8], what: &str) -> Result<(), QemuError> {
        self.writer
            .write_all(bytes)
            .map_err(|e| self.io_error(e, what))
    }

    /// Reads the next reply line (not an `IRQ` one) into `self.line`.
    fn read_reply(&mut self, what: &str) -> Result<(), QemuError> {
        loop {
            self.line.clear();
            match self.reader.read_line(&mut self.line) {
                Ok(0) => {
                    return Err(QemuError::Died {
                        during: what.to_string(),
                        status: "socket closed".into(),
                    })
                }
                Ok(_) if self.line.starts_with("IRQ") => continue,
                Ok(_) => return Ok(()),
                Err(e) => return Err(self.io_error(e, what)),
            }
        }
    }

    fn io_error(&self, e: std::io::Error, what: &str) -> QemuError {
        match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => QemuError::Timeout {
                what: what.to_string(),
                after: self.timeout,
            },
            _ => QemuError::Died {
                during: what.to_string(),
                status: format!("socket error: {e}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_text_and_flush_points() {
        let mut b = Batch::new();
        b.writel(0x9050020, 0xd);
        b.write(0x4000_0000, &[0xde, 0xad, 0x01]);
        b.read(0x4000_0000, 20_000);
        b.readl(0x9050024);
        assert_eq!(b.command(0), "writel 0x9050020 0xd");
        assert_eq!(b.command(1), "write 0x40000000 0x3 0xdead01");
        assert_eq!(b.command(2), "read 0x40000000 0x4e20");
        assert_eq!(b.cuts(), vec![2, 3]);
        let mut many = Batch::new();
        for i in 0..300 {
            many.writel(0x9050020, i);
        }
        assert_eq!(many.cuts(), vec![127, 255, 299]);
    }

    #[test]
    fn extended_batches_keep_order_and_flush_points() {
        let mut a = Batch::new();
        a.write(0x4000_0000, &[1]);
        let mut b = Batch::new();
        b.read(0x4000_0000, 20_000);
        b.readl(0x9050024);
        a.extend(&b);
        assert_eq!(a.len(), 3);
        assert_eq!(a.command(0), "write 0x40000000 0x1 0x01");
        assert_eq!(a.command(2), "readl 0x9050024");
        assert_eq!(a.cuts(), vec![1, 2]);
    }

    #[test]
    fn hex_encoding_spans_buffer_chunks() {
        let bytes: Vec<u8> = (0..1300u32).map(|i| (i * 7) as u8).collect();
        let mut t = String::new();
        push_hex(&mut t, &bytes);
        let want: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(t, want);
    }

    #[test]
    fn replies_parse_values_and_bytes() {
        let r = Replies {
            text: "0x010000ed0x00ff10".into(),
            spans: vec![(0, 10), (10, 18), (18, 18)],
        };
        assert_eq!(r.value(0).unwrap(), 0x010000ed);
        assert_eq!(r.bytes(1).unwrap(), vec![0, 0xff, 0x10]);
        assert!(r.value(2).is_err());
    }
}
