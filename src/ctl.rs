//! The control socket: a Unix stream socket, root-only, one request per
//! connection.
//!
//! Request: the ipvsadm-style arguments, each followed by a NUL byte; the
//! client then shuts down its write half. Reply: a first line `ok` or `error`,
//! then the output (listing) or the message. Both frames are
//! `config::request`'s, where the fuzz target reaches them; this module owns
//! the socket, its limits and its clients.
//!
//! The daemon serves its clients without ever waiting on one ([`Clients`]):
//! each is read and written as far as it goes without blocking, once a
//! control tick, and gets [`IO_TIMEOUT`] for the whole exchange; a client
//! that sends nothing, or reads its answer slowly, holds only its own
//! connection, and at most [`MAX_CLIENTS`] are served at once (the rest wait
//! in the listen backlog).

use config::request;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/ferrovs/ferrovs.sock";

/// How long either side waits for the other before giving up.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request taken: a `-R` of some ten thousand services fits.
pub const MAX_REQUEST: u64 = 1 << 20;

/// Return the socket path: `FERROVS_SOCKET` if set, else the default.
pub fn default_path() -> String {
    std::env::var("FERROVS_SOCKET").unwrap_or_else(|_| DEFAULT_SOCKET.to_string())
}

/// Listen on `path` with mode 0600, replacing a stale socket file.
///
/// # Errors
/// Another daemon answers on `path`, or the socket cannot be made.
pub fn listen(path: &Path, mode: u32) -> io::Result<UnixListener> {
    if UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another ferrovs daemon answers on {}", path.display()),
        ));
    }
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Clients served at once.
pub const MAX_CLIENTS: usize = 256;

/// The control socket's clients being served.
#[derive(Debug)]
pub struct Clients {
    open: Vec<Client>,
    deadline: Duration,
}

#[derive(Debug)]
struct Client {
    s: UnixStream,
    since: Instant,
    /// The request so far.
    got: Vec<u8>,
    /// The reply, and how much of it went.
    reply: Option<(Vec<u8>, usize)>,
}

impl Default for Clients {
    fn default() -> Self {
        Self::with_deadline(IO_TIMEOUT)
    }
}

impl Clients {
    /// Clients that each get `deadline` for their whole exchange.
    pub fn with_deadline(deadline: Duration) -> Self {
        Self {
            open: Vec::new(),
            deadline,
        }
    }

    /// Take the clients waiting on `l`, read and write what each allows
    /// without blocking, and answer each whole request with `handle`
    /// (given its words, or why the request was refused).
    pub fn poll(
        &mut self,
        l: &UnixListener,
        mut handle: impl FnMut(io::Result<Vec<String>>) -> Result<String, String>,
    ) {
        while self.open.len() < MAX_CLIENTS {
            let Ok((s, _)) = l.accept() else { break };
            if s.set_nonblocking(true).is_ok() {
                self.open.push(Client {
                    s,
                    since: Instant::now(),
                    got: Vec::new(),
                    reply: None,
                });
            }
        }
        let deadline = self.deadline;
        self.open
            .retain_mut(|c| c.since.elapsed() < deadline && c.step(&mut handle));
    }
}

impl Client {
    /// Read or write as far as the socket lets; return whether the client
    /// stays (more to read or to write).
    fn step(&mut self, handle: &mut impl FnMut(io::Result<Vec<String>>) -> Result<String, String>) -> bool {
        if self.reply.is_none() {
            match self.read() {
                Ok(false) => return true,
                Ok(true) => {
                    let words = request::decode(std::mem::take(&mut self.got))
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
                    self.reply = Some((request::reply(&handle(words)), 0));
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    self.reply = Some((request::reply(&handle(Err(e))), 0));
                }
                Err(_) => return false,
            }
        }
        let Some((out, sent)) = &mut self.reply else {
            return false;
        };
        while *sent < out.len() {
            match self.s.write(&out[*sent..]) {
                Ok(0) => return false,
                Ok(n) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        false
    }

    /// Read what is there; `Ok(true)` once the client shut its write half.
    fn read(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 16384];
        loop {
            match self.s.read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    if (self.got.len() + n) as u64 > MAX_REQUEST {
                        return Err(over_limit());
                    }
                    self.got.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn over_limit() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("request over {MAX_REQUEST} bytes"),
    )
}

/// Send `args` to the daemon at `path` and return its reply.
///
/// # Errors
/// The daemon is not running or did not answer; the outer error says so.
pub fn call(path: &str, args: &[String]) -> io::Result<Result<String, String>> {
    let mut s = UnixStream::connect(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot reach the ferrovs daemon at {path}: {e}"),
        )
    })?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let req = request::encode(args);
    // A request the daemon refuses part-way (too long) is answered all
    // the same: read the answer even when the write broke off.
    let wrote = s
        .write_all(&req)
        .and_then(|()| s.shutdown(std::net::Shutdown::Write));
    let mut reply = String::new();
    let read = s.read_to_string(&mut reply);
    match request::parse_reply(&reply) {
        Some(result) => Ok(result),
        None => {
            wrote?;
            read?;
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed reply from the daemon",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(tag: &str) -> (UnixListener, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("ferrovs-ctl-{tag}-{}.sock", std::process::id()));
        let l = listen(&path, 0o600).unwrap();
        (l, path)
    }

    /// Poll `clients` until `done` or 5 s, answering every request with
    /// its word count (or the refusal).
    fn serve(clients: &mut Clients, l: &UnixListener, mut done: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(5);
        while !done() && Instant::now() < end {
            clients.poll(l, |r| r.map(|w| w.len().to_string()).map_err(|e| e.to_string()));
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_request_over_the_limit_is_refused_whole() {
        let (l, path) = listener("limit");
        let mut clients = Clients::default();
        for (len, ok) in [(MAX_REQUEST, true), (10 << 20, false)] {
            let p = path.display().to_string();
            let asker = std::thread::spawn(move || {
                let mut s = UnixStream::connect(&p).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
                // The daemon stops reading past the limit and answers.
                let _ = s.write_all(&vec![b'a'; len as usize]);
                let _ = s.shutdown(std::net::Shutdown::Write);
                let mut reply = String::new();
                let _ = s.read_to_string(&mut reply);
                reply
            });
            serve(&mut clients, &l, || asker.is_finished());
            let reply = asker.join().unwrap();
            assert_eq!(reply.starts_with("ok\n"), ok, "{len}: {reply}");
            assert!(ok || reply.contains("request over"), "{reply}");
        }
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_client_that_sends_nothing_holds_only_its_own_connection() {
        let (l, path) = listener("stuck");
        let mut clients = Clients::with_deadline(Duration::from_millis(300));
        let stuck = UnixStream::connect(&path).unwrap();
        let p = path.display().to_string();
        let asker = std::thread::spawn(move || call(&p, &["-L".into(), "-n".into()]).unwrap());
        serve(&mut clients, &l, || asker.is_finished());
        assert_eq!(asker.join().unwrap(), Ok("2".to_string()));
        // Past its deadline the stuck one is let go.
        std::thread::sleep(Duration::from_millis(350));
        clients.poll(&l, |_| Ok(String::new()));
        assert!(clients.open.is_empty(), "{clients:?}");
        drop(stuck);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn two_hundred_clients_at_once_are_all_answered() {
        let (l, path) = listener("many");
        let mut clients = Clients::default();
        let askers: Vec<_> = (0..200)
            .map(|_| {
                let p = path.display().to_string();
                std::thread::spawn(move || call(&p, &["-L".into(), "-n".into()]))
            })
            .collect();
        serve(&mut clients, &l, || {
            askers.iter().all(std::thread::JoinHandle::is_finished)
        });
        for a in askers {
            assert_eq!(a.join().unwrap().unwrap(), Ok("2".to_string()));
        }
        let _ = std::fs::remove_file(&path);
    }
}
