//! Building a run from its settings: signals, the ledger and its files, the sink, reports.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::delivery::Delivery;
use super::lifecycle::{Drain, Lifecycle};
use super::outbox::Outbox;
use super::reports::Reports;
use super::step::Policy;
use super::txn::Txn;
use super::App;
use crate::config::Settings;
use crate::exit::Status;
use crate::failed::Ledger;
use crate::guarantee::Mode;
use crate::input::Operand;
use crate::options::Format;
use crate::private::NotPrivate;
use crate::route::Router;
use crate::say;
use crate::signals::Signals;
use crate::sink::{DryRun, KafkaSink, Sink};
use crate::spool::SpoolDir;

/// A run that could not start, with the status it exits with.
pub(super) struct Setup(pub Status, pub anyhow::Error);

fn setup(status: Status) -> impl FnOnce(anyhow::Error) -> Setup {
    move |e| Setup(status, e)
}

/// A file that could not be opened: 73 when kpipe refused it (another user could steer it),
/// else 74.
/// Checks before anything is sent that a file operand can be read: a typo ends the run at
/// once, not after the files before it went out. A FIFO is opened when its turn comes (opening
/// one waits for its writer).
fn readable(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}; check the path", path.display()))?;
    if meta.is_dir() {
        anyhow::bail!("{} is a directory; name the files in it", path.display());
    }
    if meta.is_file() {
        std::fs::File::open(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    }
    Ok(())
}

fn open_failed(e: anyhow::Error) -> Setup {
    match e.downcast_ref::<NotPrivate>() {
        Some(_) => Setup(Status::CantCreat, e),
        None => Setup(Status::IoErr, e),
    }
}

impl App {
    pub(super) fn new(s: Settings, router: Router) -> Result<App, Setup> {
        for input in &s.inputs {
            if let Operand::File(path) = input {
                readable(path).map_err(setup(Status::NoInput))?;
            }
        }
        let signals = Signals::install().map_err(setup(Status::Software))?;
        let (dead_letter, mut spool_dir) = if s.dry_run {
            (None, None)
        } else {
            (s.dead_letter.clone(), s.spool.clone())
        };
        if let Some(dir) = &spool_dir {
            crate::spool::prepare_dir(dir).map_err(setup(Status::CantCreat))?;
        }
        // With a spool nothing may be lost: what the brokers refuse for good is kept beside it.
        let spool_keeps_dead_letters = dead_letter.is_none() && spool_dir.is_some();
        let dead_letter = dead_letter.or_else(|| {
            spool_dir
                .as_ref()
                .map(|d| d.join(crate::spool::DEAD_LETTER))
        });
        let delivery = match &s.transactions {
            Some(t) if !s.dry_run => Delivery::Transactions(Box::new(
                Txn::new(
                    t.clone(),
                    spool_dir.as_deref(),
                    dead_letter.as_deref(),
                    s.confirm,
                )
                .map_err(|e| match e.downcast_ref::<super::txn::IdInUse>() {
                    Some(_) => Setup(Status::TempFail, e),
                    None => Setup(Status::CantCreat, e),
                })?,
            )),
            _ => Delivery::EachRecord,
        };
        let transactional = delivery.txn().is_some();
        if s.transactions
            .as_ref()
            .is_some_and(|t| t.mode == Mode::ExactlyOnce)
            && transactional
        {
            // The log holds what is not committed yet: nothing is spooled, and spool files of
            // runs without --exactly-once are left for such a run.
            spool_dir = None;
        }
        let ledger = Arc::new(
            Ledger::new(dead_letter.as_deref(), spool_dir.as_deref()).map_err(open_failed)?,
        );
        if spool_keeps_dead_letters {
            ledger.dead_letter_in_spool();
        }
        let spool = spool_dir
            .as_deref()
            .map(SpoolDir::open)
            .transpose()
            .map_err(setup(Status::IoErr))?;
        if s.tls_insecure && !s.quiet {
            say!("kpipe: --tls-insecure: the brokers' certificates are not checked; anyone on the way can read and change what kpipe sends");
        }
        if s.security.plain_text_password() && !s.quiet {
            say!("kpipe: SASL PLAIN without TLS: the password crosses the network as it is, for anyone on the way to read; give --tls");
        }
        if s.acks != crate::options::Acks::All && !s.quiet {
            say!("kpipe: --acks {:?} turns the idempotent producer off: retries may duplicate or reorder records", s.acks);
        }
        let sink = if s.dry_run {
            Sink::DryRun(DryRun::new(ledger.clone()))
        } else {
            Sink::Kafka(KafkaSink::new(&s, ledger.clone()).map_err(setup(Status::Config))?)
        };
        let stats_out: Option<Box<dyn Write>> = match s.stats.as_deref() {
            None => None,
            Some("-") => Some(Box::new(std::io::stderr())),
            Some(path) => Some(Box::new(
                crate::private::open_append(Path::new(path), "the --stats file")
                    .map_err(open_failed)?,
            )),
        };
        let replay_router =
            Router::new(Format::Envelope, &Default::default()).map_err(setup(Status::Software))?;
        let drain = if spool.is_some() || transactional {
            Drain::Bounded
        } else {
            Drain::UntilSettled
        };
        let mut life = Lifecycle::new(s.shutdown_timeout, drain);
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            life = life.at_a_terminal();
        }
        let reports = Reports::new(
            s.progress,
            stats_out,
            s.metrics_file.clone(),
            s.stats_interval,
        );
        if let Some(addr) = &s.metrics {
            crate::metrics::serve(addr, ledger.clone()).map_err(setup(Status::Usage))?;
        }
        let mut out = Outbox::new(sink, ledger, life, signals, reports);
        out.transactional = transactional;
        out.quiet = s.quiet;
        out.first_answer_by = s.connect_timeout.map(|t| (Instant::now() + t, t));
        Ok(App {
            policy: Policy {
                format: s.format,
                on_error: s.on_error,
                max_record_size: s.max_record_size,
                quiet: s.quiet,
            },
            router,
            replay_router,
            out,
            delivery,
            spool,
            lines: 0,
            source: (0, 0),
            seen_malformed: false,
            io_error: None,
            last_rescan: Instant::now(),
            s,
        })
    }
}
