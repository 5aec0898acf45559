//! Signals, turned into flags the reading loop checks between blocks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};

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
        for sig in [SIGTERM, SIGINT] {
            let stops = stops.clone();
            // SAFETY: the handler only increments an atomic, which is async-signal-safe.
            unsafe {
                signal_hook::low_level::register(sig, move || {
                    stops.fetch_add(1, Ordering::SeqCst);
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
