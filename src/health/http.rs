//! keepalived's HTTP_GET and SSL_GET: one connection per URL, a GET in the
//! configured HTTP version, the status code within its ranges and the MD5
//! digest of the body. SSL_GET speaks TLS with rustls: certificates are not
//! verified (keepalived's default: the check is about the server answering,
//! not about trust), signatures still are, SNI only with `enable_sni`, and a
//! client certificate from the global `SSL` block. Must not touch anything
//! but its connection.

use super::Context;
use super::net::{connect, within};
use config::keepalived::{Check, Ssl, Url};
use md5::{Digest, Md5};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The two client configurations: with and without SNI.
#[derive(Debug)]
pub struct Tls {
    plain: Arc<ClientConfig>,
    sni: Arc<ClientConfig>,
}

/// Accepts any certificate (keepalived's default) but checks that the
/// handshake is signed by it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl Tls {
    /// The configurations for `ssl` (a client certificate if it names one).
    ///
    /// # Errors
    /// The certificate or key cannot be read.
    pub fn new(ssl: &Ssl) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("SSL: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)));
        let mut cfg = match (&ssl.certificate, &ssl.key) {
            (Some(c), Some(k)) => {
                let certs = CertificateDer::pem_file_iter(c)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .map_err(|e| format!("SSL certificate {}: {e}", c.display()))?;
                let key =
                    PrivateKeyDer::from_pem_file(k).map_err(|e| format!("SSL key {}: {e}", k.display()))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("SSL: {e}"))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err("SSL: certificate and key go together".into()),
        };
        let mut plain = cfg.clone();
        plain.enable_sni = false;
        cfg.enable_sni = true;
        Ok(Self {
            plain: Arc::new(plain),
            sni: Arc::new(cfg),
        })
    }
}

/// GET one URL of `check`.
pub async fn get(
    check: &Check,
    ctx: &Context,
    url: &Url,
    tls: bool,
    sni: bool,
    protocol: &str,
) -> Result<(), String> {
    let scheme = if tls { "https" } else { "http" };
    let what = format!("GET {scheme}://{}:{}{}", check.connect_ip, check.port, url.path);
    let default_port = if tls { 443 } else { 80 };
    let host = match (&url.virtualhost, check.port == default_port) {
        (Some(v), _) => v.clone(),
        (None, true) => check.connect_ip.to_string(),
        (None, false) => format!("{}:{}", check.connect_ip, check.port),
    };
    let request = format!(
        "GET {} HTTP/{}\r\nUser-Agent: KeepAliveClient\r\nHost: {host}\r\n{}\r\n",
        url.path,
        if protocol == "1.1" { "1.1" } else { "1.0" },
        if protocol == "1.0" {
            ""
        } else {
            "Connection: close\r\n"
        },
    );
    let t = std::time::Duration::from_secs(u64::from(check.connect_timeout.max(1)));
    let stream = connect(check).await?;
    let reply = if tls {
        let tls_cfg = ctx.tls.as_ref().map_err(|e| format!("{what}: {e}"))?;
        let (cfg, name) = match (&url.virtualhost, sni) {
            (Some(v), true) => (
                tls_cfg.sni.clone(),
                ServerName::try_from(v.clone()).map_err(|e| format!("{what}: virtualhost {v}: {e}"))?,
            ),
            _ => (tls_cfg.plain.clone(), ServerName::from(check.connect_ip)),
        };
        let connector = tokio_rustls::TlsConnector::from(cfg);
        let s = within(t, &format!("{what}: TLS"), connector.connect(name, stream)).await?;
        within(t, &what, exchange(s, &request)).await?
    } else {
        within(t, &what, exchange(stream, &request)).await?
    };
    verify(&reply, url).map_err(|e| format!("{what}: {e}"))
}

/// Send the request, read the reply to its end (at most 1 MiB).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, request: &str) -> std::io::Result<Vec<u8>> {
    s.write_all(request.as_bytes()).await?;
    s.flush().await?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 16384];
    while reply.len() < 1 << 20 {
        match s.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            // Servers often close without TLS's close_notify.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !reply.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(reply)
}

/// The status within the URL's ranges, and the body's digest if it has one.
pub fn verify(reply: &[u8], url: &Url) -> Result<(), String> {
    let head_end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP reply")?;
    let head = String::from_utf8_lossy(&reply[..head_end]);
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status code")?;
    if !url.status.iter().any(|&(a, b)| (a..=b).contains(&code)) {
        let want: Vec<String> = url
            .status
            .iter()
            .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
            .collect();
        return Err(format!("status {code}, want {}", want.join(" ")));
    }
    if let Some(d) = &url.digest {
        let got: String = Md5::digest(&reply[head_end + 4..])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if got != *d {
            return Err(format!("digest {got}, want {d}"));
        }
    }
    Ok(())
}
