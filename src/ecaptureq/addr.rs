//! The `--ecaptureq` address (`ws://HOST:PORT/[path][?token=SECRET]`) and
//! the access policy it implies for incoming WebSocket requests: which
//! browser origins may connect (SPEC §5.2: a page on another site must not
//! read decrypted traffic) and, when a token is set, who presents it.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::error::{Error, Result};

/// eCapture's default eCaptureQ port, used when the URL names none.
pub const DEFAULT_PORT: u16 = 28257;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcqAddr {
    /// The host as written, without brackets ("127.0.0.1", "::", "localhost").
    pub host: String,
    pub port: u16,
    /// Required from every client when set.
    pub token: Option<String>,
    /// `wss://`: served over TLS (`--ecaptureq-cert`, `--ecaptureq-key`).
    pub tls: bool,
}

fn bad(url: &str, why: &str) -> Error {
    Error::usage(format!("invalid value '{url}' for --ecaptureq: {why}"))
}

/// Decodes %XX escapes (and '+' as space) of a query value.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in a query string ("a=1&token=x").
pub fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| percent_decode(v)).flatten()
    })
}

impl EcqAddr {
    pub fn parse(url: &str) -> Result<EcqAddr> {
        let (rest, tls) = if let Some(r) = url.strip_prefix("ws://") {
            (r, false)
        } else if let Some(r) = url.strip_prefix("wss://") {
            (r, true)
        } else {
            return Err(bad(url, "expected ws://HOST:PORT/ or wss://HOST:PORT/"));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let query = tail.split_once('?').map(|(_, q)| q.split('#').next().unwrap_or(""));
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad(url, "unclosed '[' in the host"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad(url, "expected ':' after ']'"))?),
            };
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(url, "not an IPv6 address between [ ]"));
            }
            (h, port)
        } else {
            let (h, p) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if h.contains(':') {
                return Err(bad(url, "put an IPv6 address in brackets, e.g. ws://[::1]:28257/"));
            }
            (h, p)
        };
        if host.is_empty() {
            return Err(bad(url, "no host"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            // 0 asks for any free port; the log says which one.
            Some(p) => p.parse::<u16>().map_err(|_| bad(url, "the port must be 0 to 65535"))?,
        };
        let token = match query.and_then(|q| query_value(q, "token")) {
            Some(t) if t.is_empty() => return Err(bad(url, "empty token")),
            t => t,
        };
        Ok(EcqAddr { host: host.to_string(), port, token, tls })
    }

    /// The socket addresses to bind (a host name may resolve to several).
    pub fn socket_addrs(&self) -> Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = match self.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, self.port)],
            Err(_) => (self.host.as_str(), self.port)
                .to_socket_addrs()
                .map_err(|e| Error::runtime(format!("--ecaptureq: cannot resolve {}: {e}", self.host)))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Error::runtime(format!("--ecaptureq: {} resolves to no address", self.host)));
        }
        Ok(addrs)
    }

    /// The URL for logs with the port actually bound, token hidden.
    pub fn display(&self, port: u16) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let token = if self.token.is_some() { "?token=…" } else { "" };
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{host}:{port}/{token}")
    }
}

/// Why a request is refused: HTTP status and a short reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

/// Hosts a browser page may come from: loopback names, the configured host
/// (unless it is a wildcard), and an IP literal the client itself used to
/// reach us (necessarily one of ours). A host *name* taken from the request
/// is not trusted: that is how DNS rebinding attacks look.
pub struct Policy {
    configured_host: Option<String>,
    token: Option<String>,
}

/// The host of an Origin header value ("http://localhost:3000" → "localhost").
fn origin_host(origin: &str) -> Option<String> {
    let rest = origin.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The host of a Host header value ("127.0.0.1:28257", "[::1]:28257").
fn host_header_host(host: &str) -> String {
    let h = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    h.to_ascii_lowercase()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Policy {
    pub fn new(addr: &EcqAddr) -> Policy {
        let wildcard = addr.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
        Policy {
            configured_host: (!wildcard).then(|| addr.host.to_ascii_lowercase()),
            token: addr.token.clone(),
        }
    }

    /// Checks one handshake request: `origin` and `host` are its Origin and
    /// Host headers, `query` its URI's query, `authorization` its
    /// Authorization header.
    pub fn check(
        &self,
        origin: Option<&str>,
        host: Option<&str>,
        query: Option<&str>,
        authorization: Option<&str>,
    ) -> std::result::Result<(), Refusal> {
        if let Some(origin) = origin {
            let allowed = match origin_host(origin) {
                None => false,
                Some(h) => {
                    matches!(h.as_str(), "localhost" | "127.0.0.1" | "::1")
                        || self.configured_host.as_deref() == Some(h.as_str())
                        || (h.parse::<IpAddr>().is_ok() && host.map(host_header_host).as_deref() == Some(h.as_str()))
                }
            };
            if !allowed {
                return Err(Refusal { status: 403, reason: format!("cross-origin request from {origin} refused") });
            }
        }
        if let Some(want) = &self.token {
            let from_query = query.and_then(|q| query_value(q, "token"));
            let from_header = authorization.and_then(|a| a.strip_prefix("Bearer ")).map(|t| t.trim().to_string());
            let ok = [from_query, from_header].into_iter().flatten().any(|t| constant_time_eq(t.as_bytes(), want.as_bytes()));
            if !ok {
                return Err(Refusal { status: 401, reason: "missing or wrong token".into() });
            }
        }
        Ok(())
    }
}

/// Whether binding `addr` exposes the stream beyond this host.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(url: &str) -> EcqAddr {
        EcqAddr::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn addresses() {
        assert_eq!(p("ws://127.0.0.1:28257/"), EcqAddr { host: "127.0.0.1".into(), port: 28257, token: None, tls: false });
        assert!(p("wss://127.0.0.1:28257/").tls);
        assert_eq!(p("wss://[::1]:2/?token=abc").display(2), "wss://[::1]:2/?token=…");
        assert_eq!(p("ws://127.0.0.1:9000").port, 9000, "no trailing slash");
        assert_eq!(p("ws://0.0.0.0:1/any/path").host, "0.0.0.0");
        assert_eq!(p("ws://[::1]:28257/").host, "::1");
        assert_eq!(p("ws://[::]:5/").host, "::");
        assert_eq!(p("ws://localhost/").port, DEFAULT_PORT);
        assert_eq!(p("ws://127.0.0.1:1/?token=s%20ecret&x=1").token.as_deref(), Some("s ecret"));
        assert_eq!(p("ws://[::1]:2/?token=abc").display(2), "ws://[::1]:2/?token=…");
        assert_eq!(p("ws://127.0.0.1:0/").port, 0, "0: any free port");
        assert_eq!(p("ws://[::]:5/").socket_addrs().unwrap(), vec!["[::]:5".parse().unwrap()]);
    }

    #[test]
    fn bad_addresses() {
        for (url, why) in [
            ("http://127.0.0.1:1/", "expected ws://"),
            ("wss://:1/", "no host"),
            ("ws://:28257/", "no host"),
            ("ws:///", "no host"),
            ("ws://127.0.0.1:99999/", "0 to 65535"),
            ("ws://127.0.0.1:x/", "0 to 65535"),
            ("ws://[::1/", "unclosed"),
            ("ws://[nope]:1/", "not an IPv6"),
            ("ws://::1:28257/", "brackets"),
            ("ws://h:1/?token=", "empty token"),
        ] {
            let e = EcqAddr::parse(url).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn origins() {
        let pol = Policy::new(&p("ws://127.0.0.1:28257/"));
        let ok = |o: Option<&str>, host: Option<&str>| pol.check(o, host, None, None).is_ok();
        assert!(ok(None, None), "no Origin: not a browser");
        assert!(ok(Some("http://localhost/"), None), "eCapture's Go client and the GUI");
        assert!(ok(Some("http://localhost:3000"), None));
        assert!(ok(Some("http://127.0.0.1:28257"), None));
        assert!(ok(Some("http://[::1]:8080"), None));
        assert!(!ok(Some("https://evil.example"), Some("127.0.0.1:28257")));
        assert!(!ok(Some("null"), None));
        // DNS rebinding: a host name in both headers is still refused ...
        assert!(!ok(Some("http://evil.example:28257"), Some("evil.example:28257")));
        // ... but our own IP, as the client reached us, is fine.
        assert!(ok(Some("http://192.168.1.5:28257"), Some("192.168.1.5:28257")));
        assert!(!ok(Some("http://192.168.1.6"), Some("192.168.1.5:28257")));
        assert_eq!(pol.check(Some("http://evil.example"), None, None, None).unwrap_err().status, 403);
        // A configured host name is trusted.
        let pol = Policy::new(&p("ws://capture.lan:28257/"));
        assert!(pol.check(Some("http://capture.lan"), None, None, None).is_ok());
    }

    #[test]
    fn tokens() {
        let pol = Policy::new(&p("ws://127.0.0.1:1/?token=s3cret"));
        assert_eq!(pol.check(None, None, None, None).unwrap_err().status, 401);
        assert_eq!(pol.check(None, None, Some("token=wrong"), None).unwrap_err().status, 401);
        assert!(pol.check(None, None, Some("a=b&token=s3cret"), None).is_ok());
        assert!(pol.check(None, None, None, Some("Bearer s3cret")).is_ok());
        assert_eq!(pol.check(None, None, None, Some("Basic s3cret")).unwrap_err().status, 401);
        // Origin is checked first: a cross-origin page with the token is still refused.
        assert_eq!(pol.check(Some("http://evil.example"), None, Some("token=s3cret"), None).unwrap_err().status, 403);
        assert!(Policy::new(&p("ws://127.0.0.1:1/")).check(None, None, Some("token=anything"), None).is_ok());
    }
}
