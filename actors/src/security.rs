//! Securing the device–edge link: a shared token checked in the handshake, and optional TLS.
//!
//! The edge is a server on a network: without a token, anything that can reach its port can
//! use its inference threads; without TLS the token, the tensors and the results cross the
//! network in the clear and the device cannot tell the edge from an impostor. The two are
//! independent and both off by default (loopback demos need neither):
//!
//! - **Token** ([`Token`]): the device sends it in `Hello`; an edge configured with one answers a
//!   missing or different token with `Reject { BadToken }`. Compared in constant time. Secrets
//!   come from files (`token_file`), never from the command line (where `ps` shows them), and
//!   their `Debug` output is redacted. Without TLS the token travels in clear: use both on any
//!   network you do not trust.
//! - **TLS** ([`ServerTls`], [`ClientTls`]): rustls with the *ring* provider (aws-lc-rs needs
//!   cmake to build). The edge presents a certificate chain and key (PEM); the device trusts the
//!   CA certificates in one PEM file and checks the edge's name (a DNS name or an IP address in
//!   the certificate's subject alternative names). No client certificates: the device proves
//!   itself with the token, inside the encrypted session.
//!
//! Everything is loaded once, at start-up, into types whose `PartialEq` compares identity (so
//! the settings structs holding them keep their derives) and whose errors name the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use subtle::ConstantTimeEq;
use tandem_codec::control::MAX_TOKEN_LEN;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::error::ActorError;

fn bad(what: &'static str, path: &Path, why: impl fmt::Display) -> ActorError {
    ActorError::Credentials { what, path: path.to_path_buf(), why: why.to_string() }
}

/// Largest credential file read (a certificate chain is a few KB): a wrong path such as a device
/// or a huge file is an error, not an exhausted memory.
const MAX_FILE_BYTES: u64 = 1 << 20;

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, ActorError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| bad(what, path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| bad(what, path, e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(bad(what, path, format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    Ok(bytes)
}

/// The crypto provider: ring, named explicitly so that no process-wide default (and no
/// aws-lc-rs) is ever needed.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A shared secret. `Debug` never prints it; `==` and [`Token::matches`] run in constant time
/// for tokens of equal length (the length is not secret).
#[derive(Clone)]
pub struct Token(Arc<str>);

impl Token {
    /// A token from text: surrounding whitespace is trimmed; it must then be 1 to 256 bytes of
    /// printable characters.
    pub fn new(text: &str) -> Result<Token, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("the token is empty".into());
        }
        if t.len() > MAX_TOKEN_LEN {
            return Err(format!("the token is {} bytes long, at most {MAX_TOKEN_LEN} are allowed", t.len()));
        }
        if t.chars().any(char::is_control) {
            return Err("the token contains control characters".into());
        }
        Ok(Token(t.into()))
    }

    /// Read a token file (one line; a trailing newline is fine). Warns when other users may
    /// read it.
    pub fn load(path: &Path) -> Result<Token, ActorError> {
        let bytes = read("token file", path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("token file", path, "not UTF-8 text"))?;
        let token = Token::new(text).map_err(|why| bad("token file", path, why))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(path = %path.display(), mode = format!("{:o}", meta.permissions().mode() & 0o777), "token file is readable by other users; chmod 600 it");
            }
        }
        Ok(token)
    }

    /// Whether `presented` is this token (constant time for equal lengths).
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// The secret, for the `Hello` the device sends.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Token) -> bool {
        self.matches(&other.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The edge's TLS side: its certificate chain and private key.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    config: Arc<ServerConfig>,
    source: PathBuf,
}

impl ServerTls {
    /// Load a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, ActorError> {
        ServerTls::from_pem(&read("TLS certificate", cert)?, &read("TLS key", key)?, cert, key)
    }

    /// From PEM bytes; `source` and `key_source` name them in errors.
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        source: &Path,
        key_source: &Path,
    ) -> Result<ServerTls, ActorError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("TLS certificate", source, e))?;
        if chain.is_empty() {
            return Err(bad("TLS certificate", source, "no CERTIFICATE block in the PEM file"));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| bad("TLS key", key_source, format!("{e} (expected a PEM private key)")))?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS", source, e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| bad("TLS certificate and key", source, e))?;
        let config = Arc::new(config);
        Ok(ServerTls { acceptor: TlsAcceptor::from(config.clone()), config, source: source.to_path_buf() })
    }

    /// Run the server side of a TLS handshake on `io`.
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: S,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<S>> {
        self.acceptor.accept(io).await
    }
}

impl PartialEq for ServerTls {
    fn eq(&self, other: &ServerTls) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").field("certificate", &self.source).finish()
    }
}

/// The device's TLS side: the CA certificates it trusts and the name the edge must prove.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    source: PathBuf,
}

impl ClientTls {
    /// Trust the certificates in the PEM file `ca`; expect the edge to be `server_name` (a DNS
    /// name or an IP address).
    pub fn load(ca: &Path, server_name: &str) -> Result<ClientTls, ActorError> {
        ClientTls::from_pem(&read("TLS CA", ca)?, server_name, ca)
    }

    /// From PEM bytes; `source` names them in errors.
    pub fn from_pem(ca_pem: &[u8], server_name: &str, source: &Path) -> Result<ClientTls, ActorError> {
        let mut roots = RootCertStore::empty();
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| bad("TLS CA", source, e))?;
            roots.add(cert).map_err(|e| bad("TLS CA", source, e))?;
            n += 1;
        }
        if n == 0 {
            return Err(bad("TLS CA", source, "no CERTIFICATE block in the PEM file"));
        }
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|e| bad("TLS server name", source, format!("{server_name:?}: {e}")))?;
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS", source, e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        Ok(ClientTls { connector: TlsConnector::from(config.clone()), config, name, source: source.to_path_buf() })
    }

    /// Run the client side of a TLS handshake on `io`.
    pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: S,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<S>> {
        self.connector.connect(self.name.clone(), io).await
    }

    /// The name the edge's certificate must carry.
    pub fn server_name(&self) -> String {
        self.name.to_str().into_owned()
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &ClientTls) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls").field("ca", &self.source).field("server_name", &self.name).finish()
    }
}

/// The host part of `host:port` (`[::1]:7878` → `::1`): the default TLS server name.
pub fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_trimmed_bounded_and_redacted() {
        let t = Token::new("  s3cret\n").unwrap();
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches("s3cret "));
        assert!(!t.matches(""));
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
        assert!(Token::new(" \n").is_err());
        assert!(Token::new(&"x".repeat(MAX_TOKEN_LEN + 1)).is_err());
        assert!(Token::new("a\u{7}b").is_err());
        assert!(Token::new(&"x".repeat(MAX_TOKEN_LEN)).is_ok());
    }

    #[test]
    fn token_files_name_the_file_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = Token::load(&missing).unwrap_err().to_string();
        assert!(e.contains("token file") && e.contains("nope"), "{e}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(Token::load(&empty).unwrap_err().to_string().contains("empty"));
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "abc\n").unwrap();
        assert!(Token::load(&ok).unwrap().matches("abc"));
    }

    #[test]
    fn pem_errors_are_clear() {
        let p = Path::new("x.pem");
        let e = ServerTls::from_pem(b"not a pem", b"", p, p).unwrap_err().to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
        let e = ClientTls::from_pem(b"", "localhost", p).unwrap_err().to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
    }

    #[test]
    fn host_of_strips_the_port() {
        assert_eq!(host_of("127.0.0.1:7878"), "127.0.0.1");
        assert_eq!(host_of("edge.local:7878"), "edge.local");
        assert_eq!(host_of("[::1]:7878"), "::1");
        assert_eq!(host_of("edge.local"), "edge.local");
    }
}
