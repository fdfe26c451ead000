//! The control socket: a Unix stream socket, root-only, one request per
//! connection.
//!
//! Request: the ipvsadm-style arguments, each followed by a NUL byte; the
//! client then shuts down its write half. Reply: a first line `ok` or `error`,
//! then the output (listing) or the message.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

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

/// Read one request from a client.
///
/// # Errors
/// The client went away, sent more than [`MAX_REQUEST`] bytes, or sent
/// something that is not UTF-8.
pub fn read_request(s: &mut UnixStream) -> io::Result<Vec<String>> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = Vec::new();
    s.take(MAX_REQUEST + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_REQUEST {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("request over {MAX_REQUEST} bytes"),
        ));
    }
    let text = String::from_utf8(buf)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "request is not UTF-8"))?;
    Ok(text.split_terminator('\0').map(str::to_string).collect())
}

/// Write a reply.
///
/// # Errors
/// The client went away.
pub fn write_reply(s: &mut UnixStream, result: &Result<String, String>) -> io::Result<()> {
    let (head, body) = match result {
        Ok(out) => ("ok", out),
        Err(msg) => ("error", msg),
    };
    s.write_all(format!("{head}\n{body}").as_bytes())
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
    let mut req = Vec::new();
    for a in args {
        req.extend_from_slice(a.as_bytes());
        req.push(0);
    }
    s.write_all(&req)?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    match reply.split_once('\n') {
        Some(("ok", out)) => Ok(Ok(out.to_string())),
        Some(("error", msg)) => Ok(Err(msg.to_string())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed reply from the daemon",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_request_over_the_limit_is_refused_whole() {
        for (len, ok) in [(MAX_REQUEST, true), (MAX_REQUEST + 1, false)] {
            let (mut client, mut server) = UnixStream::pair().unwrap();
            let writer = std::thread::spawn(move || {
                let _ = client.write_all(&vec![b'a'; len as usize]);
            });
            let got = read_request(&mut server);
            writer.join().unwrap();
            assert_eq!(got.is_ok(), ok, "{len}: {got:?}");
            if let Err(e) = got {
                assert!(e.to_string().contains("request over"), "{e}");
            }
        }
    }
}
