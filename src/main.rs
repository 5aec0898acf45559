//! kpipe: forward records from standard input to Apache Kafka, losing none.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = kpipe::cli::parse();
    let status = kpipe::app::run(cli);
    ExitCode::from(status.code())
}
