//! The live progress line, shown only when stderr is a terminal.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress line, or nothing when stderr is not a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
}

/// The size of standard input when it is a regular file, for a total and an ETA. Asked of the
/// open descriptor itself: opening the input again would block on a FIFO with no writer.
fn stdin_size() -> Option<u64> {
    let stat = rustix::fs::fstat(std::io::stdin().as_fd()).ok()?;
    let is_file =
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile;
    is_file.then_some(stat.st_size as u64)
}

impl Progress {
    /// Starts the line if `wanted` and stderr is a terminal.
    pub fn start(wanted: bool) -> Progress {
        if !wanted || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = match stdin_size() {
            Some(total) => {
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(5))
                    .with_style(
                        ProgressStyle::with_template(
                            "{bar:30} {bytes}/{total_bytes} ETA {eta} {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    )
            }
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5))
                .with_style(
                    ProgressStyle::with_template("{spinner} {bytes} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
        };
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar: Some(bar) }
    }

    /// Whether the line is on screen.
    pub fn shown(&self) -> bool {
        self.bar.is_some()
    }

    /// Updates the line.
    pub fn update(&self, bytes: u64, read: u64, delivered: u64, in_flight: i64, rate: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            bar.set_message(format!(
                "{read} read, {delivered} delivered, {in_flight} in flight, {rate:.0}/s"
            ));
        }
    }

    /// Removes the line before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
