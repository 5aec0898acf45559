//! How kpipe reaches a secured cluster: the TLS and SASL flags, the `-F` properties file, and
//! the secrets, which never come from the command line and never leave in a message.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::cli::Cli;
use crate::options::SaslMechanism;

/// librdkafka properties whose values are secrets: refused under `-X` (argv is visible in `ps`),
/// redacted from every message, and only taken from files no one else can read.
pub const SECRET_KEYS: &[&str] = &[
    "sasl.password",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.key.pem",
    "sasl.oauthbearer.client.secret",
];

/// Whether the value of property `key` is (or, misspelt, may be meant as) a secret: a known
/// secret key, or one whose name speaks of a password or secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEYS.contains(&k.as_str()) || ["pass", "pasw", "secret"].iter().any(|w| k.contains(w))
}

/// The environment variable that may hold the SASL password.
pub const PASSWORD_ENV: &str = "KPIPE_SASL_PASSWORD";

/// The environment variable that may hold the OAuth client secret.
pub const CLIENT_SECRET_ENV: &str = "KPIPE_OAUTH_CLIENT_SECRET";

/// What the security flags and the `-F` file add to the producer configuration.
#[derive(Debug, Default)]
pub struct Security {
    /// From `-F FILE`, applied before the flags.
    pub file: Vec<(String, String)>,
    /// From the flags, applied after the file.
    pub flags: Vec<(String, String)>,
    /// Every secret value, to redact from messages.
    pub secrets: Vec<String>,
    /// Who the brokers will take kpipe for, for messages about what it may not do.
    pub principal: String,
    /// With `--kerberos-keytab`: the ticket cache of this run and kinit's last complaint.
    pub kerberos: Option<TicketCache>,
}

/// A ticket cache of kpipe's own, in a private directory removed at exit. librdkafka's GSSAPI
/// logs in with whatever ticket the process's cache holds, so a shared cache would let a
/// failed kinit pass unnoticed under another principal's ticket.
#[derive(Debug)]
pub struct TicketCache {
    dir: tempfile::TempDir,
}

impl TicketCache {
    fn new() -> Result<TicketCache> {
        let dir = tempfile::Builder::new()
            .prefix("kpipe-krb5-")
            .tempdir()
            .context("creating a private directory for the Kerberos ticket cache")?;
        Ok(TicketCache { dir })
    }

    /// The cache, as `KRB5CCNAME` names it.
    pub fn name(&self) -> String {
        format!("FILE:{}", self.dir.path().join("ccache").display())
    }

    /// The command librdkafka runs to log in (at start, then every
    /// `sasl.kerberos.min.time.before.relogin`): kinit with the keytab, its complaint kept for
    /// kpipe's message instead of on stderr.
    fn kinit_command(&self) -> String {
        format!(
            "kinit -k -t \"%{{sasl.kerberos.keytab}}\" %{{sasl.kerberos.principal}} 2>\"{}\"",
            self.complaint_file().display()
        )
    }

    /// Where kinit's last complaint (the KDC's reason) is kept.
    pub fn complaint_file(&self) -> std::path::PathBuf {
        self.dir.path().join("kinit.err")
    }
}

/// What kinit said when it last failed, from its complaint file, if anything.
pub fn last_complaint(file: &Path) -> Option<String> {
    let text = fs::read_to_string(file).ok()?;
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

impl Security {
    /// Reads `-F`, the password file or environment, and maps the flags.
    pub fn from_cli(cli: &Cli) -> Result<Security> {
        let file = match &cli.config_file {
            Some(path) => read_properties_file(path)?,
            None => Vec::new(),
        };
        let password = secret(cli.sasl_password_file.as_deref(), PASSWORD_ENV)?;
        let mut flags = flag_properties(cli)?;
        if let Some(p) = &password {
            match cli.sasl_mechanism {
                None if !file.iter().any(|(k, _)| k.starts_with("sasl.")) => {
                    bail!("a SASL password was given but no --sasl-mechanism")
                }
                Some(m @ (SaslMechanism::Gssapi | SaslMechanism::Oauthbearer)) => bail!(
                    "a SASL password was given, but {} takes none: {}",
                    m.librdkafka_name(),
                    m.credentials()
                ),
                _ => {}
            }
            flags.push(("sasl.password".into(), p.clone()));
        }
        if cli.sasl_mechanism == Some(SaslMechanism::Oauthbearer) {
            let Some(secret) = secret(cli.oauth_client_secret_file.as_deref(), CLIENT_SECRET_ENV)?
            else {
                bail!(
                    "OAUTHBEARER needs the client secret: --oauth-client-secret-file FILE or {CLIENT_SECRET_ENV}"
                )
            };
            flags.push(("sasl.oauthbearer.client.secret".into(), secret));
        }
        let kerberos = match &cli.kerberos_keytab {
            Some(_) => {
                let cache = TicketCache::new()?;
                flags.push(("sasl.kerberos.kinit.cmd".into(), cache.kinit_command()));
                Some(cache)
            }
            None => None,
        };
        let secrets = file
            .iter()
            .chain(&flags)
            .filter(|(k, _)| is_secret_key(k))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .collect();
        let user = flags
            .iter()
            .chain(&file)
            .find(|(k, _)| k == "sasl.username")
            .map(|(_, v)| format!("User:{v}"));
        let principal = match (cli.sasl_mechanism, user, &cli.cert) {
            (Some(SaslMechanism::Gssapi), _, _) => match &cli.kerberos_principal {
                Some(p) => format!("User:{} (Kerberos {p})", kafka_short_name(p)),
                None => "the principal of the Kerberos ticket cache".into(),
            },
            (Some(SaslMechanism::Oauthbearer), _, _) => format!(
                "User:<the token's subject> (OAuth client {})",
                cli.oauth_client_id.as_deref().unwrap_or_default()
            ),
            (_, Some(u), _) => u,
            (_, None, Some(cert)) => format!("the subject of {}", cert.display()),
            (_, None, None) => "User:ANONYMOUS".into(),
        };
        Ok(Security {
            file,
            flags,
            secrets,
            principal,
            kerberos,
        })
    }

    /// `KRB5CCNAME` for this run, when kpipe keeps its own ticket cache.
    pub fn ticket_cache(&self) -> Option<String> {
        self.kerberos.as_ref().map(TicketCache::name)
    }

    /// Whether the SASL password would cross the network in clear text (PLAIN without TLS).
    pub fn plain_text_password(&self) -> bool {
        let get = |key: &str| {
            self.flags
                .iter()
                .chain(&self.file)
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.to_ascii_uppercase())
        };
        get("security.protocol").as_deref() == Some("SASL_PLAINTEXT")
            && get("sasl.mechanism").as_deref() == Some("PLAIN")
    }

    /// `text` with every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets)
    }
}

/// The properties the TLS and SASL flags set.
fn flag_properties(cli: &Cli) -> Result<Vec<(String, String)>> {
    let mut p: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| p.push((k.to_string(), v.to_string()));
    let tls = cli.tls
        || cli.ca.is_some()
        || cli.cert.is_some()
        || cli.tls_key.is_some()
        || cli.tls_insecure;
    match (cli.sasl_mechanism, tls) {
        (Some(_), true) => set("security.protocol", "SASL_SSL"),
        (Some(_), false) => set("security.protocol", "SASL_PLAINTEXT"),
        (None, true) => set("security.protocol", "SSL"),
        (None, false) => {}
    }
    if let Some(m) = cli.sasl_mechanism {
        set("sasl.mechanism", m.librdkafka_name());
    }
    let kerberos = cli.kerberos_keytab.is_some() || cli.kerberos_principal.is_some();
    let oauth = cli.oauth_token_url.is_some()
        || cli.oauth_client_id.is_some()
        || cli.oauth_client_secret_file.is_some()
        || cli.oauth_scope.is_some();
    match cli.sasl_mechanism {
        Some(SaslMechanism::Plain | SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512) => {
            match &cli.sasl_username {
                Some(u) => set("sasl.username", u),
                None => bail!("--sasl-mechanism needs --sasl-username"),
            }
        }
        Some(m @ (SaslMechanism::Gssapi | SaslMechanism::Oauthbearer))
            if cli.sasl_username.is_some() =>
        {
            bail!(
                "--sasl-username is for PLAIN and SCRAM; {} takes {}",
                m.librdkafka_name(),
                m.credentials()
            )
        }
        Some(SaslMechanism::Gssapi) => {
            set("sasl.kerberos.service.name", &cli.kerberos_service_name);
            match (&cli.kerberos_keytab, &cli.kerberos_principal) {
                (Some(keytab), Some(principal)) => {
                    check_private(keytab, "the keytab")?;
                    set("sasl.kerberos.keytab", &keytab.to_string_lossy());
                    set("sasl.kerberos.principal", principal);
                }
                (Some(_), None) => bail!("--kerberos-keytab needs --kerberos-principal"),
                (None, Some(_)) => bail!("--kerberos-principal needs --kerberos-keytab (without both, the ticket kinit left is used)"),
                // The ticket cache holds a ticket: librdkafka must not run kinit without a keytab.
                (None, None) => set("sasl.kerberos.min.time.before.relogin", "0"),
            }
        }
        Some(SaslMechanism::Oauthbearer) => {
            set("sasl.oauthbearer.method", "oidc");
            match (&cli.oauth_token_url, &cli.oauth_client_id) {
                (Some(url), Some(id)) => {
                    set("sasl.oauthbearer.token.endpoint.url", url);
                    set("sasl.oauthbearer.client.id", id);
                }
                _ => bail!("OAUTHBEARER needs --oauth-token-url and --oauth-client-id"),
            }
            if let Some(scope) = &cli.oauth_scope {
                set("sasl.oauthbearer.scope", scope);
            }
        }
        None if cli.sasl_username.is_some() => {
            bail!("--sasl-username needs --sasl-mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
        }
        None => {}
    }
    if kerberos && cli.sasl_mechanism != Some(SaslMechanism::Gssapi) {
        bail!("--kerberos-keytab and --kerberos-principal need --sasl-mechanism GSSAPI");
    }
    if oauth && cli.sasl_mechanism != Some(SaslMechanism::Oauthbearer) {
        bail!("the --oauth-* flags need --sasl-mechanism OAUTHBEARER");
    }
    for (flag, path, key) in [
        ("--ca", &cli.ca, "ssl.ca.location"),
        ("--cert", &cli.cert, "ssl.certificate.location"),
        ("--tls-key", &cli.tls_key, "ssl.key.location"),
    ] {
        if let Some(path) = path {
            fs::metadata(path)
                .with_context(|| format!("{flag} {}: cannot read it", path.display()))?;
            set(key, &path.to_string_lossy());
        }
    }
    if cli.cert.is_some() != cli.tls_key.is_some() {
        bail!("mutual TLS needs both --cert and --tls-key");
    }
    if cli.tls_insecure {
        set("enable.ssl.certificate.verification", "false");
        set("ssl.endpoint.identification.algorithm", "none");
    }
    Ok(p)
}

/// `key=value` lines with `#` comments and blank lines, as kcat's `-F` reads them.
pub fn parse_properties_text(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.push((k.trim().to_string(), v.trim().to_string()))
            }
            // The line may hold a secret: name it by number only.
            _ => return Err(format!("line {}: expected key=value", i + 1)),
        }
    }
    Ok(out)
}

/// Whether a file with permission bits `mode` may hold a secret: no access for group or others.
pub fn private_mode(mode: u32) -> bool {
    mode & 0o077 == 0
}

fn check_private(path: &Path, what: &str) -> Result<()> {
    let meta = fs::metadata(path).with_context(|| format!("reading {what} {}", path.display()))?;
    if !private_mode(meta.mode()) {
        bail!(
            "{what} {} holds a secret but group or others may read it: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// Reads `-F FILE`; refuses a file others can read when it holds a secret.
pub fn read_properties_file(path: &Path) -> Result<Vec<(String, String)>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("reading the -F file {}", path.display()))?;
    let props = parse_properties_text(&text)
        .map_err(|e| anyhow::anyhow!("the -F file {}: {e}", path.display()))?;
    if props.iter().any(|(k, _)| is_secret_key(k)) {
        check_private(path, "the -F file")?;
    }
    Ok(props)
}

/// A secret from its file (first line, private) or else from the environment variable `env`.
fn secret(file: Option<&Path>, env: &str) -> Result<Option<String>> {
    match (file, std::env::var(env)) {
        (Some(path), _) => Ok(Some(read_secret_file(path)?)),
        (None, Ok(s)) if !s.is_empty() => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// Reads a password file (its first line); refuses a file others can read.
pub fn read_secret_file(path: &Path) -> Result<String> {
    check_private(path, "the password file")?;
    let text = fs::read_to_string(path)
        .with_context(|| format!("reading the password file {}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// `text` with every occurrence of each secret replaced by `[redacted]`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "[redacted]");
    }
    out
}

/// The user name Kafka's default rule makes of a Kerberos principal: its first component
/// (`kpipe/host@REALM` → `kpipe`).
fn kafka_short_name(principal: &str) -> &str {
    principal
        .split(['/', '@'])
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(principal)
}

impl SaslMechanism {
    /// The name librdkafka takes.
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::Gssapi => "GSSAPI",
            SaslMechanism::Oauthbearer => "OAUTHBEARER",
        }
    }

    /// The flags that carry this mechanism's credentials.
    pub fn credentials(self) -> &'static str {
        match self {
            SaslMechanism::Plain | SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                "--sasl-username and --sasl-password-file (or KPIPE_SASL_PASSWORD)"
            }
            SaslMechanism::Gssapi => {
                "--kerberos-keytab and --kerberos-principal (or a ticket from kinit)"
            }
            SaslMechanism::Oauthbearer => {
                "--oauth-client-id and --oauth-client-secret-file (or KPIPE_OAUTH_CLIENT_SECRET)"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_text_takes_comments_blanks_and_spaces() {
        let p =
            parse_properties_text("# cluster\n\nbootstrap.servers = k1:9093\nsasl.password=a=b\n")
                .unwrap();
        assert_eq!(
            p,
            vec![
                ("bootstrap.servers".into(), "k1:9093".into()),
                ("sasl.password".into(), "a=b".into())
            ]
        );
        let e = parse_properties_text("ok=1\nhunter2\n").unwrap_err();
        assert_eq!(e, "line 2: expected key=value");
    }

    #[test]
    fn misspelt_secret_keys_are_secrets_too() {
        for k in [
            "sasl.password",
            "sasl.pasword",
            "SASL.PASSWD",
            "ssl.key.pem",
            "sasl.oauthbearer.client.secret",
            "my.secret",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["sasl.username", "ssl.ca.location", "linger.ms"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn kafka_takes_a_kerberos_principal_by_its_first_component() {
        assert_eq!(kafka_short_name("kpipe@KPIPE.TEST"), "kpipe");
        assert_eq!(kafka_short_name("kpipe/host1@KPIPE.TEST"), "kpipe");
        assert_eq!(kafka_short_name("kpipe"), "kpipe");
    }

    #[test]
    fn only_owner_only_files_may_hold_secrets() {
        assert!(private_mode(0o100600));
        assert!(private_mode(0o100400));
        assert!(!private_mode(0o100640));
        assert!(!private_mode(0o100604));
    }

    #[test]
    fn secrets_are_redacted_everywhere_in_a_message() {
        let s = vec!["hunter2".to_string(), String::new()];
        assert_eq!(
            redact("auth failed for hunter2 (hunter2)", &s),
            "auth failed for [redacted] ([redacted])"
        );
    }

    #[test]
    fn a_secret_file_open_to_others_is_refused_and_a_private_one_read() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pw");
        fs::write(&p, "s3cret\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_secret_file(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && !e.contains("s3cret"), "{e}");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret_file(&p).unwrap(), "s3cret");
    }
}
