//! Transactional runs, around the loop: when to open, commit or abort a transaction, where the
//! committed position stands in the log (start.rs finds it, rewind.rs reads the log back
//! after an abort).
//! `next_step` decides; the rest carries it out.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Result;

mod behind;
mod rewind;
mod start;

use super::confirm::Confirm;
use super::lifecycle::Halt;
use super::outbox::Outbox;
use super::{App, Input};
use crate::failed::Stored;
use crate::guarantee::{Mode, Transactions};
use crate::input::BlockReader;
use crate::journal::Journal;
use crate::message::Origin;
use crate::reason::Reason;
use crate::say;
use crate::sink::TxnFailed;
use crate::stats::Counters;
use crate::wire::Record;

/// How many aborts in a row after the input is over are resent at once (see `aborted`).
const ABORTS_AT_END: u32 = 3;

/// How long a commit or abort may block, at most.
pub(super) const TXN_WAIT: Duration = Duration::from_secs(60);

/// A transactional run's state.
pub(super) struct Txn {
    t: Transactions,
    /// `--exactly-once`: the log in the spool. `--atomic` with a dead-letter file: a private
    /// log of the input, to put every record there if the transaction aborts.
    journal: Option<Journal>,
    /// `--atomic`'s private log directory, removed at the end.
    temp_dir: Option<PathBuf>,
    /// The log position the last commit recorded.
    committed: u64,
    /// Every record before this position was handed to the open transaction or settled.
    position: u64,
    /// Lines read up to `position`, for line numbers after a rewind.
    position_lines: u64,
    /// Input before this offset was judged in an earlier pass: read again after an abort, its
    /// bad records are not reported, counted or dead-lettered twice.
    judged: u64,
    /// A record could not be handed over: nothing after it may be sent in this run.
    blocked: bool,
    /// When the open transaction began.
    opened: Option<Instant>,
    /// The counts when the last commit was made, restored when a rewind resends.
    counted: Counted,
    /// Records handed to the open transaction.
    sent: u64,
    /// Aborts in a row since the last commit: a stream's after its input was over, a
    /// batch's for purged records.
    aborts_at_end: u32,
    /// Why the transaction was aborted; from then on every record fails with it.
    aborted: Option<Reason>,
    /// Why the log could not take more input, once it could not.
    log_error: Option<String>,
    /// `--atomic` with the derived id: held while the run lasts, so that a second job with the
    /// same id on this host refuses to start instead of fencing this one.
    _id_lock: Option<std::fs::File>,
    /// Where the log ends once it could not take more: input past it is not sent (a record
    /// not in the log could be lost to a kill, and one partly in it would arrive cut).
    logged_end: Option<u64>,
    /// `--confirm`: the answers to rsyslog.
    confirm: Option<Confirm>,
    /// `--exactly-once` reading a pipe: takes the input into the log while kpipe is busy.
    behind: Option<behind::Behind>,
    /// Where the input taken into the log behind the reader begins, until the reader follows.
    follow_from: Option<u64>,
    /// Input read that the log could not keep: read after the log (each time it is read), and
    /// failed.
    unlogged: Vec<u8>,
}

/// The input counted up to a commit: records, bytes and empty records read (the ledger's
/// counters) and lines.
#[derive(Debug, Default, Clone, Copy)]
struct Counted {
    read: u64,
    bytes: u64,
    empty: u64,
    lines: u64,
}

/// What the transaction needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Nothing,
    Commit,
    Abort,
}

/// What is going on around the transaction.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Seen {
    /// A transaction is open.
    pub open: bool,
    /// How long it has been open.
    pub open_for: Duration,
    /// The input is closed and every byte read was handled.
    pub input_done: bool,
    /// A stop signal came, or reading had to end early.
    pub stopping: bool,
    /// A record in the transaction failed to be delivered.
    pub failed: bool,
}

/// The decision: a batch commits only at the end of an input that ended well; a stream
/// commits every interval and at the end, and aborts only what failed (its log resends it).
pub(super) fn next_step(mode: Mode, interval: Duration, s: Seen) -> Step {
    if !s.open {
        return Step::Nothing;
    }
    if s.failed {
        return Step::Abort;
    }
    match mode {
        Mode::Atomic if s.stopping => Step::Abort,
        Mode::Atomic if s.input_done => Step::Commit,
        Mode::Atomic => Step::Nothing,
        Mode::ExactlyOnce if s.input_done || s.open_for >= interval => Step::Commit,
        Mode::ExactlyOnce => Step::Nothing,
    }
}

impl Txn {
    /// Sets up the transaction state and the log.
    pub fn new(
        t: Transactions,
        spool: Option<&Path>,
        dead_letter: Option<&Path>,
        confirm: bool,
    ) -> Result<Txn> {
        let id_lock = match t.mode {
            Mode::Atomic if t.derived => Some(lock_id(&t.id)?),
            _ => None,
        };
        let (journal, temp_dir) = match (t.mode, spool, dead_letter) {
            (Mode::ExactlyOnce, Some(dir), _) => (Some(Journal::open(&dir.join("log"))?), None),
            (Mode::Atomic, _, Some(file)) => {
                let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
                let name = format!(".kpipe-atomic-{}", std::process::id());
                let dir = parent.unwrap_or(Path::new(".")).join(name);
                private_dir(&dir)?;
                (Some(Journal::open(&dir)?), Some(dir))
            }
            _ => (None, None),
        };
        Ok(Txn {
            _id_lock: id_lock,
            t,
            journal,
            temp_dir,
            committed: 0,
            position: 0,
            position_lines: 0,
            judged: 0,
            blocked: false,
            opened: None,
            counted: Counted::default(),
            sent: 0,
            aborts_at_end: 0,
            aborted: None,
            log_error: None,
            logged_end: None,
            confirm: confirm.then(Confirm::default),
            behind: None,
            follow_from: None,
            unlogged: Vec::new(),
        })
    }

    /// For a stream: bytes of input in its log that no commit covers (the next run sends
    /// them), and the log.
    pub fn waiting(&self) -> Option<(u64, &Path)> {
        match (&self.journal, self.t.mode) {
            (Some(j), Mode::ExactlyOnce) => Some((j.end().saturating_sub(self.committed), j.dir())),
            _ => None,
        }
    }
}

/// Another run on this host holds the same transactional id: starting would fence it.
#[derive(Debug)]
pub(super) struct IdInUse(pub String);

impl std::fmt::Display for IdInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another kpipe on this host sends with the transactional id {}; each would fence the other: wait for it, or give each job its own --transactional-id",
            self.0
        )
    }
}

impl std::error::Error for IdInUse {}

/// Takes this user's host-wide lock on transactional id `id` (in `$TMPDIR/kpipe-UID`, a
/// directory checked as a spool is); `IdInUse` if another run holds it.
fn lock_id(id: &str) -> Result<std::fs::File> {
    let uid = rustix::process::geteuid().as_raw();
    let dir = std::env::temp_dir().join(format!("kpipe-{uid}"));
    crate::spool::prepare_dir(&dir)?;
    let name: String = id
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' | '@' => c,
            _ => '_',
        })
        .collect();
    let path = dir.join(format!("txn-{name}.lock"));
    let file = crate::spool::open_lock_file(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(IdInUse(id.to_string()).into()),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("locking {}", path.display())))
        }
    }
}

/// Creates `--atomic`'s private log directory, which must not exist yet: one planted by
/// another user (in a log directory its group may write) would let it read the records.
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(crate::private::NotPrivate(format!(
                "--atomic's private log {} exists already (another user may have made it to read the records): remove it, or put the dead-letter file in a directory of your own",
                dir.display()
            ))
            .into())
        }
        Err(e) => Err(anyhow::Error::new(e)
            .context(format!("creating --atomic's private log {}", dir.display()))),
    }
}

/// The log could not take a block: says so and keeps the error in `log_error` (from then on
/// nothing more is logged). Returns it, for the exit message. What was read before the block
/// is still sent and committed; the block itself is not sent but kept as failed (`logged_end`).
/// (A function of the field, not a method: the start-up still holds the log borrowed when it
/// finds out.)
pub(super) fn log_failed(log_error: &mut Option<String>, e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    say!("kpipe: {text}; reading stops, what the log holds is still sent, what it could not take is kept as failed");
    *log_error = Some(text.clone());
    text
}

/// Appends what the last read took from the input to the log (when there is one that still
/// takes input), then confirms its lines. The error, said, if the log could not take it.
fn log_block(txn: &mut Txn, input: &BlockReader) -> Result<(), String> {
    let (Some(j), None) = (&mut txn.journal, &txn.log_error) else {
        return Ok(());
    };
    if input.fresh().is_empty() {
        return Ok(());
    }
    if let Err(e) = j.append(input.fresh()) {
        // The window starts at a record boundary: a record begun in an earlier block and
        // ended in this one leaves the log too.
        let _ = j.truncate(input.offset());
        txn.logged_end = Some(j.end());
        return Err(log_failed(&mut txn.log_error, &e));
    }
    if let Some(c) = &mut txn.confirm {
        c.kept(input.fresh());
    }
    Ok(())
}

impl Txn {
    /// Why the record ending at `end` (a log position) is not sent: it did not all reach the
    /// log, or it is the piece the last run left cut short.
    pub fn withheld(&self, end: u64) -> Option<String> {
        if self.journal.as_ref().is_some_and(|j| j.is_cut(end)) {
            return Some(
                "cut short where the last run stopped (killed, or out of disk space), so not sent"
                    .into(),
            );
        }
        let past = self.logged_end.is_some_and(|logged| end > logged);
        past.then(|| {
            let why = self.log_error.as_deref().unwrap_or_default();
            format!("not in the log, so not sent ({why})")
        })
    }

    /// A record starting at `start` is failed as not (wholly) in the log: its piece there is
    /// cut off, or a next run that resends from an earlier commit (this one killed before
    /// committing) would meet the piece and keep the record a second time. (The log fails at a
    /// record boundary once reading is under way; at start-up it takes the input as bytes,
    /// without knowing where records end.)
    pub fn cut_log_at(&mut self, start: u64) {
        let (Some(j), Some(end)) = (&mut self.journal, self.logged_end) else {
            return;
        };
        if start >= end {
            return;
        }
        if let Err(e) = j.truncate(start) {
            say!("kpipe: {e:#}");
        }
        self.logged_end = Some(j.end());
    }

    /// Every record before `position` (the input's offset, after `lines` lines) was handed to
    /// the open transaction or settled, unless one could not be handed over.
    pub fn handled_to(&mut self, position: u64, lines: u64) {
        if !self.blocked {
            // Input the log could not take is failed, not committed: a commit past the log's
            // end would read, to the next run, as a log that lost its end in a crash.
            self.position = self.logged_end.map_or(position, |end| position.min(end));
            self.position_lines = lines;
        }
    }

    /// Whether the record at input offset `offset` was judged in an earlier pass (this one
    /// resends it from the log): its faults were reported, counted and kept then.
    pub fn judged(&self, offset: u64) -> bool {
        offset < self.judged
    }

    /// Whether this is `--atomic`'s one transaction for the whole input.
    pub fn is_batch(&self) -> bool {
        self.t.mode == Mode::Atomic
    }

    /// Hands a record over inside the open transaction (opening one if none is), or fails it
    /// once the transaction was aborted. A record the producer cannot take stays in the log,
    /// and so does everything after it.
    pub fn send(&mut self, out: &mut Outbox, rec: &Record, origin: Origin) {
        if let Some(r) = &self.aborted {
            out.ledger.failed(origin, rec, r, Stored::No);
            return;
        }
        if self.blocked {
            return;
        }
        if self.opened.is_none() {
            if let Some(Err(TxnFailed::Fatal(e) | TxnFailed::Aborted(e))) =
                out.sink.kafka().map(|k| k.begin())
            {
                out.fatal.get_or_insert(e);
                out.life.halt(Halt::Fatal);
                self.blocked = true;
                return;
            }
            self.opened = Some(Instant::now());
            self.sent = 0;
        }
        let alone = out.sink.kafka().is_some_and(|k| k.one_at_a_time());
        let origin = if alone { origin.alone() } else { origin };
        // While the producer has no room, the input goes into the log, not the pipe.
        if out.send_while(rec, origin, || {
            self.drain(Duration::ZERO);
        }) {
            self.sent += 1;
            if alone {
                out.wait_until_settled();
            }
        } else {
            self.blocked = true;
        }
    }
}

impl Txn {
    /// Tells rsyslog that kpipe takes records (`--confirm`).
    pub fn ready(&mut self) {
        if let Some(c) = &mut self.confirm {
            c.ready();
        }
    }

    /// Whether each line is answered once logged (`--confirm`).
    pub fn confirms(&self) -> bool {
        self.confirm.is_some()
    }
}

/// Puts the counters, the line count and the position back where the last commit left them
/// (at zero before the first), for input sent again from there.
fn back_to_commit(txn: &mut Txn, c: &Counters, lines: &mut u64) {
    c.read.store(txn.counted.read, Relaxed);
    c.bytes.store(txn.counted.bytes, Relaxed);
    c.empty.store(txn.counted.empty, Relaxed);
    *lines = txn.counted.lines;
    txn.position = txn.committed;
    txn.blocked = false;
}

impl Drop for Txn {
    fn drop(&mut self) {
        if let Some(dir) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl App {
    /// Logs what the last read took from the input, before any record in it is sent.
    pub(super) fn log_input(&mut self, input: &BlockReader) {
        let Some(txn) = self.delivery.txn_mut() else {
            return;
        };
        if let Err(text) = log_block(txn, input) {
            self.io_error.get_or_insert(text);
            self.out.life.halt(Halt::InputFailed);
        }
    }

    /// Has the reader read what was taken into the log behind it first (`Txn::follow`).
    pub(super) fn follow_log(&mut self, input: &mut BlockReader) {
        let Some(txn) = self.delivery.txn_mut() else {
            return;
        };
        if let Some(text) = txn.follow(input) {
            self.io_error.get_or_insert(text);
        }
    }

    /// While the reader reads the log (resending it), takes what the input brings into the log
    /// behind it.
    pub(super) fn drain_input(&mut self, input: &mut BlockReader) {
        if let Some(txn) = self.delivery.txn_mut().filter(|_| input.has_prefix()) {
            txn.drain(Duration::ZERO);
        }
        self.follow_log(input);
    }

    /// Whether a transaction is open (it must be settled before the run ends).
    pub(super) fn transaction_open(&self) -> bool {
        self.delivery.txn().is_some_and(|t| t.opened.is_some())
    }

    /// Commits or aborts when `next_step` says so. Returns the position to resend from when a
    /// stream's transaction was aborted while reading goes on.
    pub(super) fn settle(&mut self, input: Input, reader: &mut BlockReader) -> Option<u64> {
        let input_done = input == Input::Over;
        let txn = self.delivery.txn()?;
        let failure = self.out.sink.kafka().and_then(|k| k.txn_failure());
        let seen = Seen {
            open: txn.opened.is_some(),
            open_for: txn.opened.map_or(Duration::ZERO, |t| t.elapsed()),
            input_done,
            stopping: self.out.life.stopping(),
            failed: failure.is_some(),
        };
        match next_step(txn.t.mode, txn.t.commit_interval, seen) {
            Step::Nothing => None,
            Step::Commit => self.commit(input_done, reader),
            Step::Abort => {
                let why = failure.map_or_else(|| self.stop_reason(), |r| r.to_string());
                self.aborted(why, input_done)
            }
        }
    }

    fn stop_reason(&self) -> String {
        match self.out.life.halted() {
            Some(Halt::BadInput) => "a malformed record under --on-error exit".into(),
            Some(Halt::InputFailed) => "standard input could not be read".into(),
            Some(Halt::Fatal) => format!(
                "the producer hit a fatal error: {}",
                self.out.fatal.as_deref().unwrap_or("?")
            ),
            Some(Halt::Unreachable) => "no broker answered within --connect-timeout".into(),
            Some(Halt::Aborted | Halt::Interrupted) | None => "a stop signal came".into(),
        }
    }

    fn commit(&mut self, input_done: bool, input: &mut BlockReader) -> Option<u64> {
        let txn = self.delivery.txn_mut()?;
        let k = self.out.sink.kafka()?;
        if txn.t.mode == Mode::ExactlyOnce {
            while k
                .send_position(&txn.t.offsets_topic, &txn.t.id, txn.position)
                .is_err()
            {
                txn.drain(Duration::ZERO);
                k.poll(Duration::from_millis(10));
            }
            if let Some(j) = &mut txn.journal {
                if let Err(e) = j.sync() {
                    self.io_error.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
        let began = Instant::now();
        let committed = match !input_done && txn.behind.is_some() {
            true => {
                // The producer stays on this thread (its topic handles are not Send).
                let done = AtomicBool::new(false);
                std::thread::scope(|scope| {
                    let ahead = scope.spawn(|| behind::log_ahead(txn, || done.load(Relaxed)));
                    let committed = k.commit(TXN_WAIT);
                    done.store(true, Relaxed);
                    if ahead.join().is_err() {
                        say!("kpipe: logging the input while a commit waited panicked");
                    }
                    committed
                })
            }
            false => k.commit(TXN_WAIT),
        };
        self.follow_log(input);
        let txn = self.delivery.txn_mut()?;
        match committed {
            Ok(n) => {
                if self.s.verbose >= 1 {
                    say!(
                        "kpipe: committed {n} records up to log position {} in {:?}",
                        txn.position,
                        began.elapsed()
                    );
                }
                let c = &self.out.ledger.counters;
                c.delivered.fetch_add(n, Relaxed);
                txn.opened = None;
                txn.committed = txn.position;
                txn.aborts_at_end = 0;
                txn.counted = Counted {
                    read: c.read.load(Relaxed),
                    bytes: c.bytes.load(Relaxed),
                    empty: c.empty.load(Relaxed),
                    lines: txn.position_lines,
                };
                if let Some(j) = txn
                    .journal
                    .as_mut()
                    .filter(|_| txn.t.mode == Mode::ExactlyOnce)
                {
                    if let Err(e) = j.forget_before(txn.committed) {
                        say!("kpipe: {e:#}");
                    }
                }
                None
            }
            Err(TxnFailed::Aborted(why)) => self.aborted(why, input_done),
            Err(TxnFailed::Fatal(why)) => {
                self.out.fatal.get_or_insert(why);
                self.out.life.halt(Halt::Fatal);
                None
            }
        }
    }

    /// After an abort: a batch fails every record it read; a stream resends from the
    /// committed position (now, if reading goes on; else the next run does).
    fn aborted(&mut self, why: String, input_done: bool) -> Option<u64> {
        let txn = self.delivery.txn_mut()?;
        let k = self.out.sink.kafka()?;
        if let Err(TxnFailed::Fatal(e) | TxnFailed::Aborted(e)) = k.abort(TXN_WAIT) {
            self.out.fatal.get_or_insert(e);
            self.out.life.halt(Halt::Fatal);
        }
        // Failed only by reports of records librdkafka purged from an aborted transaction.
        let purged = k.aborted_for().is_some_and(|r| r.purged());
        let refused_anew = k.refused_anew();
        txn.opened = None;
        let c = &self.out.ledger.counters;
        // Resent at once, a few times in a row: a stream's abort after its input is over (a
        // broker that came back late, a transaction the coordinator timed out while it was
        // away; an outage longer than that is left to the next run), and a batch's abort for
        // the reports of records librdkafka purged from a refused transaction. Before its
        // input is over, a stream resends anyway.
        let in_a_row = match txn.t.mode {
            Mode::ExactlyOnce => input_done,
            Mode::Atomic => purged,
        };
        if in_a_row {
            txn.aborts_at_end += 1;
        }
        let again = refused_anew || (in_a_row && txn.aborts_at_end <= ABORTS_AT_END);
        let closing = self.out.life.must_close_input();
        match txn.t.mode {
            Mode::ExactlyOnce => {
                say!("kpipe: a transaction was aborted ({why}); its records stay in the log and are sent again");
                back_to_commit(txn, c, &mut self.lines);
                // Once the input is over, the next run resends after a few aborts in a row,
                // unless a record was refused for good (resent now, it goes to the dead-letter
                // file and the rest lands).
                let now = !input_done || again;
                (now && !closing).then_some(txn.committed)
            }
            // A record refused for good is in the dead-letter file: the input is sent again
            // from the log in a new transaction, which passes it over.
            Mode::Atomic
                if txn.journal.is_some() && again && !closing && !self.out.life.stopping() =>
            {
                say!("kpipe: the transaction was aborted ({why}); it is sent again from the start without the records refused for good");
                back_to_commit(txn, c, &mut self.lines);
                Some(0)
            }
            Mode::Atomic => {
                say!("kpipe: the transaction was aborted ({why}): none of its records is visible to read_committed consumers");
                txn.aborted = Some(Reason::Aborted(why));
                self.out.life.halt(Halt::Aborted);
                if txn.journal.is_none() {
                    c.lost.fetch_add(txn.sent, Relaxed);
                }
                txn.journal.is_some().then_some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests;
