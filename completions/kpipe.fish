complete -c kpipe -s b -l brokers -d 'Bootstrap brokers, comma-separated host:port [default: bootstrap.servers from -F, else localhost:9092]' -r
complete -c kpipe -l host -d 'Broker host, as in the original syslog-ng destination (overrides --brokers)' -r
complete -c kpipe -l port -d 'Broker port, with --host (default 9092)' -r
complete -c kpipe -s t -l topic -d 'Topic, or a template such as \'logs.${PROGRAM}\'' -r
complete -c kpipe -s f -l format -d 'Input framing' -r -f -a "lines\t'Raw records split at --delimiter (default newline); bytes are sent as they are'
ndjson\t'One JSON value per line, sent byte-exact'
json\t'JSON values separated by any whitespace, each possibly spanning lines; sent compacted'
envelope\t'One JSON object per line naming topic, key, value, headers, partition and timestamp'"
complete -c kpipe -s D -l delimiter -d 'Record delimiter for --format lines; escapes \\n \\t \\r \\0 \\xNN; several bytes allowed' -r
complete -c kpipe -s K -l key-delimiter -d 'Split each line into key and value at the first DELIM (--format lines), as kcat -K does' -r
complete -c kpipe -s k -l key -d 'Record key, or a template such as \'${HOST}\'' -r
complete -c kpipe -s H -l header -d 'Record header NAME=TEMPLATE (repeatable); a value without `$` is static' -r
complete -c kpipe -l fallback-topic -d 'Topic for records whose template fields are missing, or whose topic is refused' -r
complete -c kpipe -l topic-allow -d 'Topics taken from the input (templates, envelopes) must match REGEX, whole; others go to --fallback-topic, else the dead-letter file' -r
complete -c kpipe -l timestamp-field -d 'Take the record timestamp from this JSON field (RFC 3339 or epoch milliseconds)' -r
complete -c kpipe -s p -l partition -d 'Send every record to this partition' -r
complete -c kpipe -l on-error -d 'What to do with malformed records' -r -f -a "fallback-to-string\t'Send the raw bytes unchanged, with a `kpipe.error` header; report on stderr'
silently-fallback-to-string\t'As fallback-to-string, without the report'
drop-message\t'Do not send it; report on stderr'
silently-drop-message\t'Do not send it; no report'
exit\t'Deliver what came before, then exit 65'"
complete -c kpipe -l max-record-size -d 'Largest record sent; larger ones are dead-lettered, cut at SIZE while read [default: message.max.bytes]' -r
complete -c kpipe -s X -l property -d 'librdkafka property KEY=VALUE, passed as-is (repeatable), like kcat -X; never a secret' -r
complete -c kpipe -s F -l config -d 'librdkafka properties from FILE (key=value lines, # comments), like kcat -F; flags and -X override it. A file holding a secret must not be readable by group or others' -r -F
complete -c kpipe -l ca -d 'CA certificates (PEM) to verify the brokers with; implies --tls' -r -F
complete -c kpipe -l cert -d 'Client certificate (PEM) for mutual TLS, with --tls-key; implies --tls' -r -F
complete -c kpipe -l tls-key -d 'Client private key (PEM) for mutual TLS (--key is the record key)' -r -F
complete -c kpipe -l sasl-mechanism -d 'SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI or OAUTHBEARER (SASL_SSL with --tls, else SASL_PLAINTEXT)' -r -f -a "PLAIN\t'User name and password, sent as they are (use with --tls)'
SCRAM-SHA-256\t'Salted challenge-response with SHA-256'
SCRAM-SHA-512\t'Salted challenge-response with SHA-512'
GSSAPI\t'Kerberos: a ticket from --kerberos-keytab, or the one kinit left in the ticket cache'
OAUTHBEARER\t'OAuth 2 tokens from an OIDC issuer (client credentials, --oauth-token-url)'"
complete -c kpipe -l sasl-username -d 'SASL user name' -r
complete -c kpipe -l sasl-password-file -d 'File whose first line is the SASL password (mode 600); or set KPIPE_SASL_PASSWORD' -r -F
complete -c kpipe -l kerberos-keytab -d 'Kerberos keytab (mode 600) for --kerberos-principal: kpipe runs kinit with it at start and every minute, into a ticket cache of its own. Without it, the cache kinit left is used' -r -F
complete -c kpipe -l kerberos-principal -d 'Kerberos principal kpipe logs in as with --kerberos-keytab, e.g. kpipe@EXAMPLE.COM' -r
complete -c kpipe -l kerberos-service-name -d 'The brokers\' Kerberos service: their principal is NAME/HOST, HOST as --brokers names it' -r
complete -c kpipe -l oauth-token-url -d 'The OIDC issuer\'s token endpoint, where kpipe gets (and renews) its OAuth tokens' -r
complete -c kpipe -l oauth-client-id -d 'OAuth client id, sent with its secret to --oauth-token-url' -r
complete -c kpipe -l oauth-client-secret-file -d 'File whose first line is the OAuth client secret (mode 600); or set KPIPE_OAUTH_CLIENT_SECRET' -r -F
complete -c kpipe -l oauth-scope -d 'OAuth scope to ask the token endpoint for' -r
complete -c kpipe -s z -l compression -d 'Compression of record batches, as kcat -z; none by default, as kcat (BENCHMARKS.md: lz4 or zstd where the network is the limit)' -r -f -a "none\t''
gzip\t''
snappy\t''
lz4\t''
zstd\t''"
complete -c kpipe -l acks -d 'Acknowledgements required; 1 and 0 turn idempotence off' -r -f -a "all\t'Every in-sync replica has the record; idempotence on (the default)'
1\t'The leader has written it; idempotence off'
0\t'Not acknowledged at all; idempotence off'"
complete -c kpipe -l connect-timeout -d 'How long kpipe waits for a first answer from any broker before it gives up (exit 69, what was read kept as after --delivery-timeout); once one answered, outages are ridden out' -r
complete -c kpipe -l delivery-timeout -d 'How long one record may take to be delivered, retries included; `never` keeps trying' -r
complete -c kpipe -l retry-backoff -d 'First pause between retries of a failed produce request' -r
complete -c kpipe -l retry-backoff-max -d 'Longest pause between retries, reached by doubling' -r
complete -c kpipe -l max-buffered -d 'Most record bytes held in flight; while full, kpipe stops reading stdin (--exactly-once reads on into its log)' -r
complete -c kpipe -l dead-letter -d 'Append records that fail permanently to FILE, as envelope lines with the reason [default with --spool: DIR/dead-letter.ndjson]' -r -F
complete -c kpipe -l spool -d 'Keep what could not be delivered yet in DIR; the next run sends it first. What the brokers refuse for good goes to DIR/dead-letter.ndjson, never sent again by itself' -r -F
complete -c kpipe -l transactional-id -d 'Transactional id for --atomic or --exactly-once; a run with the same id fences the last' -r
complete -c kpipe -l transaction-timeout -d 'How long a transaction may stay open (the brokers\' transaction.max.timeout.ms caps it)' -r
complete -c kpipe -l commit-interval -d 'With --exactly-once, how often the open transaction is committed' -r
complete -c kpipe -l offsets-topic -d 'With --exactly-once, the compacted topic that holds each id\'s committed log position' -r
complete -c kpipe -l shutdown-timeout -d 'After SIGTERM/SIGINT (or at EOF with --spool), how long to keep reading and delivering' -r
complete -c kpipe -l stats -d 'Write statistics as JSON lines to FILE, or `-` for stderr (fields: man kpipe, STATISTICS)' -r
complete -c kpipe -l stats-interval -d 'How often to write --stats lines' -r
complete -c kpipe -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464); an address still taken is tried again every second while records flow' -r
complete -c kpipe -l metrics-file -d 'Write Prometheus metrics to PATH every --stats-interval and at exit, replaced whole (for node_exporter\'s textfile collector: name it *.prom)' -r -F
complete -c kpipe -l dry-run -d 'Print each record as it would be sent, in envelope form, to stdout; no broker'
complete -c kpipe -l tls -d 'Connect with TLS (security.protocol SSL, or SASL_SSL with --sasl-mechanism)'
complete -c kpipe -l tls-insecure -d 'Do not verify the brokers\' certificates or names (warned on stderr); implies --tls'
complete -c kpipe -l atomic -d 'Send the whole input in one Kafka transaction, committed at EOF: all of it or none'
complete -c kpipe -l exactly-once -d 'Write every record to a log in the --spool DIR before sending, and send in transactions that also record the log position: no record twice, even across SIGKILL'
complete -c kpipe -l confirm -d 'rsyslog omprog\'s confirmMessages protocol on stdout: OK once ready, then OK for each line once it is in --exactly-once\'s log, so rsyslog resends what a killed kpipe had not kept'
complete -c kpipe -l drop-resent -d 'With --confirm: a first line that is byte for byte the last one in the log is the one a killed kpipe kept but did not confirm, sent again: dropped. Give each message a uuid'
complete -c kpipe -l no-progress -d 'Never show the live progress line, even on a terminal'
complete -c kpipe -s q -l quiet -d 'Print nothing on success and one line on failure'
complete -c kpipe -s v -l verbose -d 'More detail on stderr; twice shows librdkafka\'s own log'
complete -c kpipe -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kpipe -s V -l version -d 'Print version'
