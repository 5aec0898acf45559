//! kpipe: forward records from standard input to Apache Kafka, losing none.

use std::process::ExitCode;

// jemalloc for kpipe and, through its unprefixed `malloc`, for librdkafka and OpenSSL too. With
// glibc's malloc, librdkafka's per-message allocations freed in another order than made (the
// records of 300 partitions, each batch reported on apart) cost 0.3 µs per `ndjson` record in
// malloc and free alone; jemalloc's size-class slabs free without coalescing (BENCHMARKS.md).
// Its options are built in from .cargo/config.toml.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = kpipe::cli::parse();
    let status = kpipe::app::run(cli);
    ExitCode::from(status.code())
}
