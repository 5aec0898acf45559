//! Signals, turned into flags the reading loop checks between blocks.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};

/// A stop signal this soon after the first is taken as the same stop.
const SECOND_SIGNAL_AFTER_MS: u64 = 500;

/// Milliseconds on the monotonic clock, at least 1 (0 means "no signal yet").
fn monotonic_ms() -> u64 {
    // clock_gettime is async-signal-safe.
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000).max(1)
}

/// What arrived since the process started.
pub struct Signals {
    stops: Arc<AtomicUsize>,
    hup: Arc<AtomicBool>,
    usr1: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> Result<Signals> {
        let stops = Arc::new(AtomicUsize::new(0));
        let first_ms = Arc::new(AtomicU64::new(0));
        for sig in [SIGTERM, SIGINT] {
            let (stops, first_ms) = (stops.clone(), first_ms.clone());
            // SAFETY: the handler only reads the monotonic clock and touches atomics, both
            // async-signal-safe.
            unsafe {
                signal_hook::low_level::register(sig, move || {
                    // systemd's default KillMode signals kpipe and syslog-ng passes the same stop
                    // on a moment later: one stop, not the "stop at once" of a second signal.
                    let now = monotonic_ms();
                    match first_ms.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst) {
                        Ok(_) => {
                            stops.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(first) if now.saturating_sub(first) >= SECOND_SIGNAL_AFTER_MS => {
                            stops.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => {}
                    }
                })
            }
            .with_context(|| format!("installing the handler for signal {sig}"))?;
        }
        let hup = Arc::new(AtomicBool::new(false));
        let usr1 = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(SIGHUP, hup.clone())
            .context("installing the SIGHUP handler")?;
        signal_hook::flag::register(SIGUSR1, usr1.clone())
            .context("installing the SIGUSR1 handler")?;
        Ok(Signals { stops, hup, usr1 })
    }

    /// How many SIGTERM/SIGINT arrived.
    pub fn stops(&self) -> usize {
        self.stops.load(Ordering::SeqCst)
    }

    /// Whether SIGHUP arrived since the last call.
    pub fn take_hup(&self) -> bool {
        self.hup.swap(false, Ordering::SeqCst)
    }

    /// Whether SIGUSR1 arrived since the last call.
    pub fn take_usr1(&self) -> bool {
        self.usr1.swap(false, Ordering::SeqCst)
    }
}
