//! The journal's one writer: a thread that owns the [`Journal`] for the engine's whole
//! life and performs appends and compactions sent to it over a channel.
//!
//! Nothing else ever holds the journal, so no caller can lose it: a request future
//! dropped while it waits (a client hang-up, a request timeout) only drops its answer
//! channel, and the write it asked for completes (or fails) all the same. The engine
//! applies a written record to its ledger inside a task of its own (see
//! `Inner::append`), so what is on disk is in the ledger too, whatever the caller does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;
use tracing::error;

use super::EngineError;
use crate::decision::incident::Record;
use crate::decision::journal::{Journal, JournalError};

/// What the writer answers an append with.
pub(super) struct Appended {
    /// The live file has grown past its limit: the caller should send a compaction.
    pub(super) needs_compaction: bool,
}

enum Job {
    Append(Box<Record>, oneshot::Sender<Result<Appended, JournalError>>),
    Compact(Vec<Record>, oneshot::Sender<Result<(), JournalError>>),
    /// Leaves the journal as a write that could not be undone would.
    #[cfg(test)]
    Poison,
}

/// The handle on the writer thread. Dropping it stops the thread once its current job
/// is done, and waits for that, so the directory lock is free when the engine is gone.
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// False once the journal is lost: a write failed and could not be rolled back, or
    /// the writer thread is gone. Read by `/readyz` and the `journal_healthy` gauge.
    healthy: Arc<AtomicBool>,
}

impl Writer {
    pub(super) fn start(mut journal: Journal) -> std::io::Result<Writer> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let healthy = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&healthy);
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Append(record, reply) => {
                            let result = journal.append(&*record).map(|_| Appended {
                                needs_compaction: journal.needs_compaction(),
                            });
                            note(&journal, &flag, result.as_ref().err());
                            let _ = reply.send(result);
                        }
                        Job::Compact(live, reply) => {
                            let result = journal.compact(&live);
                            note(&journal, &flag, result.as_ref().err());
                            let _ = reply.send(result);
                        }
                        #[cfg(test)]
                        Job::Poison => journal.poison(),
                    }
                }
            })?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
            healthy,
        })
    }

    pub(super) fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Appends `record` durably. The work goes on if the future is dropped.
    pub(super) async fn append(&self, record: Record) -> Result<Appended, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Append(Box::new(record), reply))?;
        self.answer(answer).await?.map_err(EngineError::from)
    }

    pub(super) async fn compact(&self, live: Vec<Record>) -> Result<(), EngineError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Compact(live, reply))?;
        self.answer(answer).await?.map_err(EngineError::from)
    }

    #[cfg(test)]
    pub(super) fn poison(&self) {
        let _ = self.send(Job::Poison);
    }

    fn send(&self, job: Job) -> Result<(), EngineError> {
        let sent = self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok());
        if !sent {
            self.lost();
            return Err(EngineError::JournalLost);
        }
        Ok(())
    }

    async fn answer<T>(&self, answer: oneshot::Receiver<T>) -> Result<T, EngineError> {
        answer.await.map_err(|_| {
            // The thread dropped the reply without answering: it panicked.
            self.lost();
            EngineError::JournalLost
        })
    }

    fn lost(&self) {
        if self.healthy.swap(false, Ordering::Relaxed) {
            error!("the journal writer is gone; nothing more can be recorded until a restart");
        }
    }
}

/// Marks the journal lost once a write left it unusable (it refuses every further
/// write until a restart replays what is on disk).
fn note(journal: &Journal, healthy: &AtomicBool, failed: Option<&JournalError>) {
    if let Some(e) = failed
        && journal.is_poisoned()
        && healthy.swap(false, Ordering::Relaxed)
    {
        error!(path = %journal.path().display(), error = %e,
            "journal lost: a write failed and could not be undone; restart the agent to replay it");
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
