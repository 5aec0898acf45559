//! kpipe's one way to write to stderr. A stderr that is closed, full or a broken pipe loses the
//! line and nothing else: `eprintln!` would panic, and inside a librdkafka callback a panic
//! aborts the process with every record it holds.

use std::fmt;
use std::io::Write;

/// Writes one line to stderr, ignoring any error.
pub fn line(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// `say!("kpipe: ...")` writes one line to stderr and never panics.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::log::line(format_args!($($arg)*))
    };
}
