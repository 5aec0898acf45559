//! A small OIDC issuer on loopback for the OAUTHBEARER tests: `POST /token` with client
//! credentials (HTTP Basic, as librdkafka sends them) answers a JWT signed RS256 with the key
//! whose JWKS the broker checks (`scripts/kafka-local start --secure` writes both).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

use crate::util::Secure;

/// The client the issuer knows, and its secret.
pub const CLIENT_ID: &str = "kpipe";
pub const CLIENT_SECRET: &str = "oidc-s3cret-7f1e";

/// A running issuer; stops when dropped.
pub struct Issuer {
    /// The token endpoint, for `--oauth-token-url`.
    pub url: String,
    served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    port: u16,
}

/// What goes into each token.
struct Minting {
    key: String,
    kid: String,
    issuer: String,
    audience: String,
    lifetime: Duration,
}

impl Issuer {
    /// Starts an issuer whose tokens live `lifetime`, for the secure cluster's OAUTH listener.
    pub fn start(s: &Secure, lifetime: Duration) -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the issuer");
        let port = listener.local_addr().unwrap().port();
        let minting = Arc::new(Minting {
            key: s.get("OAUTH_KEY").to_string(),
            kid: s.get("OAUTH_KID").to_string(),
            issuer: s.get("OAUTH_ISSUER").to_string(),
            audience: s.get("OAUTH_AUDIENCE").to_string(),
            lifetime,
        });
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (served2, stop2) = (served.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let minting = minting.clone();
                    let served = served2.clone();
                    std::thread::spawn(move || answer(conn, &minting, &served));
                }
            }
        });
        Issuer {
            url: format!("http://127.0.0.1:{port}/token"),
            served,
            stop,
            port,
        }
    }

    /// Tokens handed out so far.
    pub fn tokens_served(&self) -> usize {
        self.served.load(SeqCst)
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn answer(conn: TcpStream, m: &Minting, served: &AtomicUsize) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut authorization = String::new();
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            match name.to_ascii_lowercase().as_str() {
                "authorization" => authorization = value.trim().to_string(),
                "content-length" => length = value.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let (status, json) = if authorization == expected {
        served.fetch_add(1, SeqCst);
        let token = m.token();
        (
            "200 OK",
            format!(
                r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{}}}"#,
                m.lifetime.as_secs()
            ),
        )
    } else {
        (
            "401 Unauthorized",
            r#"{"error":"invalid_client"}"#.to_string(),
        )
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
}

impl Minting {
    /// A JWT for client kpipe (subject kpipe), signed with the cluster's key.
    fn token(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{}"}}"#, self.kid);
        let claims = format!(
            r#"{{"iss":"{}","aud":"{}","sub":"{CLIENT_ID}","iat":{now},"exp":{},"scope":"kafka"}}"#,
            self.issuer,
            self.audience,
            now + self.lifetime.as_secs()
        );
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let mut openssl = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign", &self.key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl");
        openssl
            .stdin
            .take()
            .unwrap()
            .write_all(signed.as_bytes())
            .unwrap();
        let out = openssl.wait_with_output().expect("openssl dgst");
        assert!(out.status.success(), "signing the token failed");
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(out.stdout))
    }
}
