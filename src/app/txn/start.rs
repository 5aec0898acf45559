//! Starting a transactional run: fencing the id's earlier producer and, for a stream, finding
//! the committed log position while the input goes on into the log.

use std::time::Duration;

use anyhow::Result;

use crate::app::setup::Setup;
use crate::app::App;
use crate::exit::Status;
use crate::guarantee::Mode;
use crate::input::{BlockReader, Fill};
use crate::journal::Journal;
use crate::say;
use crate::sink::Sink;

use super::TXN_WAIT;
use crate::app::confirm::Confirm;

impl App {
    /// Fences the id's earlier producer; for a stream, finds the committed position and puts
    /// what the log holds after it ahead of the input.
    pub(in crate::app) fn start_transactions(
        &mut self,
        input: &mut BlockReader,
    ) -> Result<(), Setup> {
        self.find_committed(input).map_err(|e| {
            let status = match e.downcast_ref::<crate::sink::TxnStartError>() {
                Some(s) => s.status(),
                None => Status::IoErr,
            };
            Setup(status, e)
        })
    }

    fn find_committed(&mut self, input: &mut BlockReader) -> Result<()> {
        let Some(txn) = self.delivery.txn_mut() else {
            return Ok(());
        };
        if txn.t.derived && !self.s.quiet {
            say!("kpipe: transactional id {}", txn.t.id);
        }
        let Sink::Kafka(k) = &self.out.sink else {
            return Ok(());
        };
        let Some(journal) = txn
            .journal
            .as_mut()
            .filter(|_| txn.t.mode == Mode::ExactlyOnce)
        else {
            return k.starter().init_transactions(txn.t.timeout, TXN_WAIT);
        };
        // A piece of a record the last run left (killed, or out of space) is failed when it
        // is read (`Txn::withheld`), by this run or, if this one is killed first, the next.
        journal.mend(&self.s.delimiter)?;
        if let Some(c) = txn.confirm.as_mut().filter(|_| self.s.drop_resent) {
            c.drop_resent(journal.last_record(&self.s.delimiter)?);
        }
        if self.s.inputs.is_empty() {
            txn.behind = super::behind::Behind::stdin();
        }
        let before = journal.end();
        // Fencing and reading the offsets topic take a second or so; meanwhile the input goes
        // into the log, where a kill cannot take it, rather than wait in the pipe.
        let (t, client, starter) = (&txn.t, &self.s.client, k.starter());
        let confirm = txn.confirm.as_mut();
        let committed = std::thread::scope(|scope| {
            let start = scope.spawn(|| -> Result<Option<u64>> {
                starter.init_transactions(t.timeout, TXN_WAIT)?;
                crate::sink::ensure_offsets_topic(client, &t.offsets_topic, TXN_WAIT)?;
                crate::sink::committed_position(client, &t.offsets_topic, &t.id, TXN_WAIT)
            });
            let log_error = log_while(input, journal, confirm, || start.is_finished());
            let started = start
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("starting transactions panicked")));
            started.map(|c| (c, log_error))
        })?;
        let (committed, log_error) = committed;
        // A block the log could not take is read already: it is read after the log, failed as
        // unlogged (`Txn::logged_end`), and then the input counts as ended, as it does when
        // the log fills later.
        let unlogged = input.window().to_vec();
        if let Some(e) = log_error {
            txn.logged_end = Some(journal.end());
            let text = super::log_failed(&mut txn.log_error, &e);
            self.io_error.get_or_insert(text);
        }
        let mut at = committed.unwrap_or(journal.start());
        if at > before {
            // The commit lies past what the log held (its unsynced end was lost in a crash):
            // what was just logged goes after the commit, so no position means two things.
            say!("kpipe: the log ends before the last commit (its unsynced end was lost in a crash); going on from the commit");
            let mut moved = Vec::new();
            std::io::Read::read_to_end(&mut journal.reader(before), &mut moved)?;
            at = at.max(journal.end());
            journal.skip_to(at)?;
            journal.append(&moved)?;
        } else if at < journal.start() {
            say!("kpipe: the log starts after the last commit ({at} < {}): bytes in between were removed by hand and are not sent", journal.start());
            at = journal.start();
        }
        let backlog = before.saturating_sub(at);
        if backlog > 0 && !self.s.quiet {
            say!("kpipe: resending {backlog} bytes of input from the log that no commit covers");
        }
        input.rewind(Box::new(journal.reader(at)), at, txn.log_error.is_none());
        txn.unlogged = unlogged;
        txn.read_unlogged(input);
        txn.committed = at;
        txn.position = at;
        Ok(())
    }
}

/// Appends what the input brings to the log until `done` says so (or the input ends); the
/// bytes are read again from the log afterwards. Returns the log's error, if it could not take
/// a block: that block stays in the window, read but not logged.
fn log_while(
    input: &mut BlockReader,
    journal: &mut Journal,
    mut confirm: Option<&mut Confirm>,
    done: impl Fn() -> bool,
) -> Option<anyhow::Error> {
    while !done() {
        match input.fill(Duration::from_millis(10)) {
            Ok(Fill::Data) => {}
            Ok(Fill::Idle) => continue,
            // The input ended or failed: the main loop finds out again when it reads.
            Ok(Fill::Eof) | Err(_) => break,
        }
        let n = input.window().len();
        // The window is read again from the log: a line not logged is dropped.
        let resent = confirm
            .as_deref_mut()
            .map_or(0, |c| c.resent_len(input.fresh()));
        if let Err(e) = journal.append(&input.fresh()[resent..]) {
            return Some(e);
        }
        if let Some(c) = confirm.as_deref_mut() {
            c.kept(input.fresh());
        }
        input.consume(n);
    }
    None
}
