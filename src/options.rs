//! The values flags choose among: how input is framed, what a malformed record becomes, how
//! batches are compressed, how kpipe authenticates, which acknowledgement counts. Each names its
//! values for the command line (clap's `ValueEnum`); the rest of kpipe only matches on them.

use clap::ValueEnum;

/// How standard input is cut into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Raw records split at --delimiter (default newline); bytes are sent as they are.
    Lines,
    /// One JSON value per line, sent byte-exact.
    Ndjson,
    /// JSON values separated by any whitespace, each possibly spanning lines; sent compacted.
    Json,
    /// One JSON object per line naming topic, key, value, headers, partition and timestamp.
    Envelope,
}

/// What happens to a malformed record (syslog-ng's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnError {
    /// Send the raw bytes unchanged, with a `kpipe.error` header; report on stderr.
    FallbackToString,
    /// As fallback-to-string, without the report.
    SilentlyFallbackToString,
    /// Do not send it; report on stderr.
    DropMessage,
    /// Do not send it; no report.
    SilentlyDropMessage,
    /// Deliver what came before, then exit 65.
    Exit,
}

impl OnError {
    /// Whether the record is still sent (with its raw bytes).
    pub fn sends(self) -> bool {
        matches!(
            self,
            OnError::FallbackToString | OnError::SilentlyFallbackToString
        )
    }

    /// Whether the record is reported on stderr.
    pub fn reports(self) -> bool {
        !matches!(
            self,
            OnError::SilentlyFallbackToString | OnError::SilentlyDropMessage
        )
    }
}

/// How record batches are compressed on their way to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The name librdkafka takes.
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// How kpipe authenticates with SASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaslMechanism {
    /// User name and password, sent as they are (use with --tls).
    #[value(name = "PLAIN")]
    Plain,
    /// Salted challenge-response with SHA-256.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response with SHA-512.
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
    /// Kerberos: a ticket from --kerberos-keytab, or the one kinit left in the ticket cache.
    #[value(name = "GSSAPI")]
    Gssapi,
    /// OAuth 2 tokens from an OIDC issuer (client credentials, --oauth-token-url).
    #[value(name = "OAUTHBEARER")]
    Oauthbearer,
}

/// Which acknowledgement the broker gives before a record counts as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    /// Every in-sync replica has the record; idempotence on (the default).
    All,
    /// The leader has written it; idempotence off.
    #[value(name = "1")]
    One,
    /// Not acknowledged at all; idempotence off.
    #[value(name = "0")]
    Zero,
}
