//! Warm before master: a full-table transfer between ferrovs directors, an
//! addition to the kernel's protocol. A director that starts asks the
//! current master for every connection it holds, over TCP to the sync port
//! of the master's address (the kernel's sync is UDP, so the port is free);
//! the master answers on that stream with ordinary v1 sync messages (each
//! carries its own size) and closes. The asker takes them as it takes the
//! group's messages. A kernel director does not listen: the request fails,
//! and the asker's bound lets it go on cold.
//!
//! Request: `FERROVS-SYNC-PULL 1 <syncid>\n`; a wrong syncid or anything
//! else closes the stream unanswered.
//!
//! Must not touch: the connection tables (the control loop dumps them, the
//! workers insert what arrives).

use super::{Counters, entry, take};
use connsync::Encoder;
use dataplane::owner::Handoff;
use dataplane::sync::SyncConn;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The request's first words.
const REQUEST: &str = "FERROVS-SYNC-PULL 1";
/// How long a peer has to send its request, or to connect.
const ASK_WAIT: Duration = Duration::from_secs(2);

/// The master's end: a listener polled by its sync thread.
#[derive(Debug)]
pub struct Listener {
    l: TcpListener,
    syncid: u8,
}

impl Listener {
    /// Listen on `addr`:`port` (the interface's address, the sync port).
    ///
    /// # Errors
    /// The port is taken.
    pub fn open(addr: Ipv4Addr, port: u16, syncid: u8) -> std::io::Result<Self> {
        let l = TcpListener::bind((addr, port))?;
        l.set_nonblocking(true)?;
        Ok(Self { l, syncid })
    }

    /// A connection whose request is for our syncid, if one is waiting.
    pub fn accept(&self) -> Option<TcpStream> {
        let (s, peer) = self.l.accept().ok()?;
        s.set_nonblocking(false).ok()?;
        s.set_read_timeout(Some(ASK_WAIT)).ok()?;
        let mut line = String::new();
        BufReader::new(&s).take(64).read_line(&mut line).ok()?;
        let want = format!("{REQUEST} {}", self.syncid);
        if line.trim_end() != want {
            log::warn!(
                "sync: transfer request from {peer} refused: {:?}",
                line.trim_end()
            );
            return None;
        }
        Some(s)
    }
}

/// Write `conns` to `stream` as v1 messages of at most `maxlen` bytes, on a
/// thread of its own; close it at the end.
pub fn serve(mut stream: TcpStream, conns: Vec<SyncConn>, syncid: u8, maxlen: usize) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |p| p.to_string());
    let started = std::thread::Builder::new()
        .name("sync-transfer".into())
        .spawn(move || {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
            let out = encode(&conns, syncid, maxlen);
            match stream.write_all(&out) {
                Ok(()) => log::info!("sync: sent the table ({} connections) to {peer}", conns.len()),
                Err(e) => log::warn!("sync: table to {peer}: {e}"),
            }
        });
    if let Err(e) = started {
        log::error!("sync: transfer thread: {e}");
    }
}

/// `conns` as v1 messages of at most `maxlen` bytes, one after another.
pub fn encode(conns: &[SyncConn], syncid: u8, maxlen: usize) -> Vec<u8> {
    let mut enc = Encoder::new(syncid, maxlen);
    let mut out = Vec::new();
    for c in conns {
        if let Some(m) = enc.push(&entry(c)) {
            out.extend_from_slice(&m);
        }
    }
    if let Some(m) = enc.flush() {
        out.extend_from_slice(&m);
    }
    out
}

/// The size of the v1 message whose header starts `head` (reserved,
/// syncid, then the whole message's size in 2 bytes).
///
/// # Errors
/// A size too small for a header.
fn message_size(head: &[u8]) -> Result<usize, String> {
    let size = usize::from(u16::from_be_bytes([head[2], head[3]]));
    if size < 8 {
        return Err(format!("a message of {size} bytes"));
    }
    Ok(size)
}

/// Hand every connection of `bytes` (what [`encode`] made) to the workers,
/// waiting for room in their inboxes up to `limit`; return how many went.
///
/// # Errors
/// A malformed message (what came before it went).
pub fn take_all(bytes: &[u8], handoff: &Handoff, c: &Counters, limit: Duration) -> Result<u64, String> {
    let end = Instant::now() + limit;
    let (mut at, mut n) = (0, 0);
    while at + 4 <= bytes.len() {
        let size = message_size(&bytes[at..])?;
        let msg = bytes.get(at..at + size).ok_or("a message cut short")?;
        // The workers take a few dozen a turn: a full inbox waits.
        let send = |to: usize, conn: SyncConn| loop {
            if handoff.send_sync(to, conn) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        n += super::take_with(msg, 0, handoff, c, send).map_err(|e| format!("message dropped ({e:?})"))?;
        at += size;
    }
    Ok(n)
}

/// Ask `from`:`port` for its table and hand every connection to the
/// workers; return how many, within `limit`.
///
/// # Errors
/// No connection, a refused request, a malformed message, or the limit.
pub fn pull(
    from: Ipv4Addr,
    port: u16,
    syncid: u8,
    handoff: &Handoff,
    c: &Counters,
    limit: Duration,
) -> Result<u64, String> {
    let end = Instant::now() + limit;
    let addr = SocketAddr::from((from, port));
    let mut s = TcpStream::connect_timeout(&addr, ASK_WAIT).map_err(|e| format!("{addr}: {e}"))?;
    s.write_all(format!("{REQUEST} {syncid}\n").as_bytes())
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut n = 0;
    let mut msg = vec![0u8; 65536];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{addr}: not done within {limit:?}"));
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        // A v1 header: reserved, syncid, size (2 bytes, the whole message).
        match s.read_exact(&mut msg[..4]) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(n),
            Err(e) => return Err(format!("{addr}: {e}")),
        }
        let size = message_size(&msg).map_err(|e| format!("{addr}: {e}"))?;
        s.read_exact(&mut msg[4..size])
            .map_err(|e| format!("{addr}: {e}"))?;
        n +=
            take(&msg[..size], syncid, handoff, c).map_err(|e| format!("{addr}: message dropped ({e:?})"))?;
    }
}
