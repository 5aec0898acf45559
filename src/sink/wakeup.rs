//! Waiting for librdkafka's delivery reports without spinning.
//!
//! rdkafka's `BaseProducer::poll(timeout)` keeps polling until its deadline and asks librdkafka
//! to wait whole milliseconds only, so the last fraction of every wait is a busy loop: with the
//! queue full during a broker outage kpipe burned half a core, and in normal runs most of its
//! CPU went to `clock_gettime`. Instead librdkafka writes a byte to a pipe when its event queue
//! becomes non-empty; kpipe sleeps in poll(2) on that pipe and then serves exactly the events
//! that are there.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka_sys as rdsys;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::pipe::{pipe_with, PipeFlags};

/// librdkafka's main event queue, with a pipe that says when it has events.
pub struct Wakeup {
    queue: *mut rdsys::rd_kafka_queue_t,
    read_end: OwnedFd,
    // Kept open for librdkafka to write to.
    _write_end: OwnedFd,
}

// SAFETY: the queue handle is thread-safe in librdkafka; kpipe only uses it from one thread.
unsafe impl Send for Wakeup {}

impl Wakeup {
    /// Hooks a pipe to the client's main queue.
    pub fn new(client: *mut rdsys::rd_kafka_t) -> Result<Wakeup> {
        let (read_end, write_end) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)
            .context("creating the delivery-report wakeup pipe")?;
        // SAFETY: `client` is a live producer; the queue reference is released in Drop.
        let queue = unsafe { rdsys::rd_kafka_queue_get_main(client) };
        // SAFETY: librdkafka copies the one-byte payload; the write end outlives the hook.
        unsafe {
            rdsys::rd_kafka_queue_io_event_enable(
                queue,
                write_end.as_raw_fd(),
                b"1".as_ptr().cast(),
                1,
            )
        };
        Ok(Wakeup {
            queue,
            read_end,
            _write_end: write_end,
        })
    }

    /// Events waiting to be served.
    pub fn pending(&self) -> usize {
        // SAFETY: the queue handle is valid until Drop.
        unsafe { rdsys::rd_kafka_queue_length(self.queue) }
    }

    /// Sleeps until librdkafka has an event or `wait` passes.
    pub fn sleep(&self, wait: Duration) {
        // At least a millisecond: a zero timeout would make this a busy loop again.
        let wait = wait.max(Duration::from_millis(1));
        let timeout = Timespec::try_from(wait).ok();
        let mut fds = [PollFd::new(&self.read_end, PollFlags::IN)];
        // EINTR or another failure only ends the sleep early; the caller polls again.
        let _ = poll(&mut fds, timeout.as_ref());
        let mut buf = [0u8; 256];
        // Empty the pipe; librdkafka writes again when the queue next turns non-empty.
        while rustix::io::read(self.read_end.as_fd(), &mut buf).is_ok_and(|n| n > 0) {}
    }
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        // SAFETY: unhook before the pipe closes, then release the queue reference.
        unsafe {
            rdsys::rd_kafka_queue_io_event_enable(self.queue, -1, std::ptr::null(), 0);
            rdsys::rd_kafka_queue_destroy(self.queue);
        }
    }
}
