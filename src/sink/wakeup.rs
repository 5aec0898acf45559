//! Waiting for librdkafka's delivery reports without spinning.
//!
//! rdkafka's `BaseProducer::poll(timeout)` keeps polling until its deadline and asks librdkafka
//! to wait whole milliseconds only, so the last fraction of every wait is a busy loop: with the
//! queue full during a broker outage kpipe burned half a core, and in normal runs most of its
//! CPU went to `clock_gettime`. Instead librdkafka writes a byte to a pipe when its event queue
//! becomes non-empty; kpipe sleeps in poll(2) on that pipe and then serves exactly the events
//! that are there.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka_sys as rdsys;

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
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors on success.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error())
                .context("creating the delivery-report wakeup pipe");
        }
        // SAFETY: both descriptors were just created and are owned here.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
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
        let mut pfd = libc::pollfd {
            fd: self.read_end.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // Round up: a zero timeout would make this a busy loop again.
        let ms = wait.as_micros().div_ceil(1000).clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, ms) };
        let mut buf = [0u8; 256];
        // Empty the pipe; librdkafka writes again when the queue next turns non-empty.
        // SAFETY: reads into a local buffer from a non-blocking descriptor.
        while unsafe {
            libc::read(
                self.read_end.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        } > 0
        {}
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
