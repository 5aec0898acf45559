//! What this build of librdkafka can do.

/// librdkafka's `builtin.features`: what this build of it can do.
pub fn builtin_features() -> String {
    let mut buf = [0u8; 512];
    let mut size = buf.len();
    // SAFETY: a fresh configuration object, read into a local buffer of the size given, then
    // destroyed; librdkafka writes at most `size` bytes, NUL included.
    unsafe {
        let conf = rdkafka_sys::rd_kafka_conf_new();
        rdkafka_sys::rd_kafka_conf_get(
            conf,
            c"builtin.features".as_ptr(),
            buf.as_mut_ptr().cast(),
            &mut size,
        );
        rdkafka_sys::rd_kafka_conf_destroy(conf);
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_build_speaks_tls_and_every_sasl_mechanism_the_flags_offer() {
        let features = builtin_features();
        for f in [
            "ssl",
            "sasl_plain",
            "sasl_scram",
            "sasl_gssapi",
            "sasl_oauthbearer",
            "oidc",
            "gzip",
            "snappy",
            "lz4",
            "zstd",
        ] {
            assert!(features.split(',').any(|x| x == f), "{f} not in {features}");
        }
    }
}
