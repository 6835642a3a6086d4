//! Progress from a running call to the MCP client, in bounded memory. The
//! plugin's events go into a queue of at most [`QUEUE_EVENTS`]; a forwarder
//! task sends them as `notifications/progress` as fast as the client reads.
//! When the client is slower than the plugin, the oldest queued events are
//! dropped and counted, and the client is told how many it missed: a plugin
//! flooding progress to a client that does not read costs a few hundred KiB,
//! never more (each event's size is capped where the plugin reports it).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::Peer;
use tokio::sync::Notify;

use crate::capabilities::progress::{ProgressEvent, ProgressSink};

/// Events kept for a slow client; older ones are dropped first.
pub const QUEUE_EVENTS: usize = 64;

#[derive(Default)]
pub struct ProgressQueue {
    state: Mutex<State>,
    ready: Notify,
}

#[derive(Default)]
struct State {
    events: VecDeque<ProgressEvent>,
    dropped: u64,
    closed: bool,
}

/// What the forwarder takes in one go: how many events were dropped before
/// these (all older than them), and the events.
#[derive(Debug, PartialEq, Eq)]
pub struct Batch {
    pub dropped: u64,
    pub events: Vec<ProgressEvent>,
}

impl ProgressQueue {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queue an event without ever blocking the plugin's call.
    pub fn push(&self, event: ProgressEvent) {
        let mut state = self.state();
        if state.closed {
            return;
        }
        if state.events.len() == QUEUE_EVENTS {
            state.events.pop_front();
            state.dropped += 1;
        }
        state.events.push_back(event);
        drop(state);
        self.ready.notify_one();
    }

    /// No more events will come; the forwarder ends once the queue is empty.
    pub fn close(&self) {
        self.state().closed = true;
        self.ready.notify_one();
    }

    /// Everything queued, once there is something; `None` when closed and empty.
    pub async fn next(&self) -> Option<Batch> {
        loop {
            {
                let mut state = self.state();
                if !state.events.is_empty() || state.dropped > 0 {
                    let dropped = std::mem::take(&mut state.dropped);
                    return Some(Batch { dropped, events: state.events.drain(..).collect() });
                }
                if state.closed {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }
}

/// A sink for a call's progress and the task that forwards it to `peer`
/// under `token`; close the queue when the call ends, then await the task.
pub fn forward(
    peer: Peer<RoleServer>,
    token: ProgressToken,
) -> (ProgressSink, Arc<ProgressQueue>, tokio::task::JoinHandle<()>) {
    let queue = Arc::new(ProgressQueue::default());
    let forwarder = {
        let queue = queue.clone();
        tokio::spawn(async move {
            let mut count = 0u64;
            while let Some(batch) = queue.next().await {
                let mut messages = Vec::with_capacity(batch.events.len() + 1);
                if batch.dropped > 0 {
                    messages.push(format!(
                        "warden: {} progress events dropped: the client reads progress slower than the plugin reports it",
                        batch.dropped
                    ));
                    count += batch.dropped;
                }
                messages.extend(batch.events.into_iter().map(|e| format!("{}: {}", e.kind, e.message)));
                for message in messages {
                    count += 1;
                    let note =
                        ProgressNotificationParam::new(token.clone(), count as f64).with_message(message);
                    if let Err(e) = peer.notify_progress(note).await {
                        tracing::warn!(error = %e, "could not send a progress notification");
                    }
                }
            }
        })
    };
    let sink: ProgressSink = {
        let queue = queue.clone();
        Arc::new(move |event| queue.push(event))
    };
    (sink, queue, forwarder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: usize) -> ProgressEvent {
        ProgressEvent { kind: "step".into(), message: n.to_string() }
    }

    #[tokio::test]
    async fn a_slow_reader_gets_the_latest_events_and_the_count_of_the_rest() {
        let queue = ProgressQueue::default();
        for n in 0..1000 {
            queue.push(event(n));
        }
        queue.close();
        let batch = queue.next().await.unwrap();
        assert_eq!(batch.dropped, 1000 - QUEUE_EVENTS as u64);
        assert_eq!(batch.events.len(), QUEUE_EVENTS);
        assert_eq!(batch.events.last(), Some(&event(999)));
        assert_eq!(batch.events.first(), Some(&event(1000 - QUEUE_EVENTS)));
        assert_eq!(queue.next().await, None);
    }

    #[tokio::test]
    async fn a_reader_keeping_up_loses_nothing() {
        let queue = ProgressQueue::default();
        for n in 0..3 {
            queue.push(event(n));
            assert_eq!(queue.next().await, Some(Batch { dropped: 0, events: vec![event(n)] }));
        }
        queue.close();
        queue.push(event(9));
        assert_eq!(queue.next().await, None, "events after the call ended are ignored");
    }
}
