//! Group commit: messages posted at about the same time, from any socket or request, are
//! stored together (one transaction, one commit where the store can) and published together,
//! and only then acknowledged.
//!
//! One task writes. While it stores a batch, new messages queue; when it is done it takes all
//! that queued (up to [`MAX_BATCH`]) as the next batch. So a message on an idle server is
//! stored at once, alone, and under load each commit carries the messages that arrived during
//! the one before: the batch grows with the load, without a timer. Because batches are stored
//! and published one after another, events go out in the order their messages were stored.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::domain::error::{Error, Result};
use crate::domain::{Event, Inserted, Message, NewMessage, Posted, Quote, Username};
use crate::ports::{EventBus, MessageRepo};

/// The most messages one commit stores.
const MAX_BATCH: usize = 256;
/// Posts that may wait for the writer before posting waits to queue.
const QUEUE: usize = 4 * MAX_BATCH;

/// A message waiting to be stored, and who waits for the outcome.
struct Job {
    message: NewMessage,
    sender: Username,
    /// The message it answers, as the reply shows it.
    quote: Option<Quote>,
    done: oneshot::Sender<Result<Posted>>,
}

/// The handle of the writing task; the task ends when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writing task on the current tokio runtime.
    pub(crate) fn start(messages: Arc<dyn MessageRepo>, bus: Arc<dyn EventBus>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(queue, messages, bus));
        Self { jobs }
    }

    /// Stores `message` from `sender` (answering the message `quote` quotes) with the next
    /// batch and publishes it, then answers what storing did. The message is stored and
    /// published even if the caller stops waiting.
    ///
    /// # Errors
    /// What [`MessageRepo::insert`] refuses; `Unexpected` when storing or publishing failed.
    pub(crate) async fn post(
        &self,
        message: NewMessage,
        sender: Username,
        quote: Option<Quote>,
    ) -> Result<Posted> {
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Job {
                message,
                sender,
                quote,
                done,
            })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::unexpected(anyhow::anyhow!("the message writer has stopped"))
}

async fn run(
    mut queue: mpsc::Receiver<Job>,
    messages: Arc<dyn MessageRepo>,
    bus: Arc<dyn EventBus>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&*messages, &*bus, std::mem::take(&mut batch)).await;
    }
}

/// Stores one batch, publishes what it stored in one go, then answers each waiting post.
async fn commit(messages: &dyn MessageRepo, bus: &dyn EventBus, batch: Vec<Job>) {
    let mut news = Vec::with_capacity(batch.len());
    let mut waiting = Vec::with_capacity(batch.len());
    for job in batch {
        news.push(job.message);
        waiting.push((job.sender, job.quote, job.done));
    }
    metrics::histogram!("parley_commit_batch_size").record(news.len() as f64);
    // A batch of one is a plain insert.
    let inserted = match news.as_slice() {
        [one] => vec![messages.insert(one).await],
        all => messages.insert_all(all).await,
    };
    let mut events = Vec::with_capacity(news.len());
    let outcomes: Vec<Result<Posted>> = news
        .into_iter()
        .zip(inserted)
        .zip(&waiting)
        .map(|((new, inserted), (sender, quote, _))| match inserted? {
            Inserted::New { id, seq } => {
                let message = Message::posted(new, id, seq, sender.clone(), quote.clone());
                events.push(Event::MessagePosted(message.clone()));
                Ok(Posted {
                    message,
                    created: true,
                })
            }
            // A resend: the chat heard of it when it was first stored.
            Inserted::Existing(message) => Ok(Posted {
                message,
                created: false,
            }),
        })
        .collect();
    metrics::counter!("parley_messages_stored_total").increment(events.len() as u64);
    let published = match events.len() {
        0 => Ok(()),
        1 => bus.publish(events.remove(0)).await,
        _ => bus.publish_all(events).await,
    };
    for (outcome, (_, _, done)) in outcomes.into_iter().zip(waiting) {
        let outcome = match (&published, outcome) {
            // Stored but not announced: the sender hears of the failure, as the chat did not.
            (Err(e), Ok(posted)) if posted.created => Err(Error::unexpected(anyhow::anyhow!(
                "message {} stored, but publishing it failed: {e}",
                posted.message.id
            ))),
            (_, outcome) => outcome,
        };
        // A post that stopped waiting is still stored and published.
        let _ = done.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::Utc;

    use super::*;
    use crate::domain::{ChatId, MessageBody, MessageId, Seq, UserId};
    use crate::ports::{MockEventBus, MockMessageRepo};

    fn new(chat: i64, text: &str) -> NewMessage {
        NewMessage {
            chat_id: ChatId(chat),
            sender_id: UserId(1),
            body: MessageBody::parse(text, 100).unwrap(),
            created_at: Utc::now(),
            client_id: None,
            reply_to: None,
        }
    }

    fn job(message: NewMessage) -> (Job, oneshot::Receiver<Result<Posted>>) {
        let (done, rx) = oneshot::channel();
        let sender = Username::parse("ann").unwrap();
        (
            Job {
                message,
                sender,
                quote: None,
                done,
            },
            rx,
        )
    }

    #[tokio::test]
    async fn a_batch_is_stored_in_one_call_and_published_in_one_call_in_order() {
        let mut messages = MockMessageRepo::new();
        messages.expect_insert().times(0);
        messages.expect_insert_all().times(1).returning(|all| {
            all.iter()
                .enumerate()
                .map(|(i, m)| {
                    if m.chat_id == ChatId(404) {
                        Err(Error::ChatNotFound)
                    } else {
                        Ok(Inserted::New {
                            id: MessageId(10 + i as i64),
                            seq: Seq(1 + i as i64),
                        })
                    }
                })
                .collect()
        });
        let published = Arc::new(Mutex::new(Vec::new()));
        let seen = published.clone();
        let mut bus = MockEventBus::new();
        bus.expect_publish().times(0);
        bus.expect_publish_all().times(1).returning(move |events| {
            seen.lock().unwrap().extend(events);
            Ok(())
        });
        let (a, a_rx) = job(new(1, "one"));
        let (b, b_rx) = job(new(404, "nowhere"));
        let (c, c_rx) = job(new(1, "three"));
        commit(&messages, &bus, vec![a, b, c]).await;

        assert_eq!(a_rx.await.unwrap().unwrap().message.id, MessageId(10));
        assert!(matches!(b_rx.await.unwrap(), Err(Error::ChatNotFound)));
        assert_eq!(c_rx.await.unwrap().unwrap().message.id, MessageId(12));
        let ids: Vec<_> = published
            .lock()
            .unwrap()
            .iter()
            .map(|e| match e {
                Event::MessagePosted(m) => m.id,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(ids, [MessageId(10), MessageId(12)]);
    }

    #[tokio::test]
    async fn a_failed_publish_fails_the_new_messages_but_not_the_resends() {
        let mut messages = MockMessageRepo::new();
        messages.expect_insert_all().returning(|all| {
            vec![
                Ok(Inserted::New {
                    id: MessageId(1),
                    seq: Seq(1),
                }),
                Ok(Inserted::Existing(Message::posted(
                    all[1].clone(),
                    MessageId(0),
                    Seq(0),
                    Username::parse("ann").unwrap(),
                    None,
                ))),
            ]
        });
        let mut bus = MockEventBus::new();
        bus.expect_publish()
            .times(1)
            .returning(|_| Err(Error::unexpected(anyhow::anyhow!("bus down"))));
        let (a, a_rx) = job(new(1, "new"));
        let (b, b_rx) = job(new(1, "resent"));
        commit(&messages, &bus, vec![a, b]).await;
        assert!(matches!(a_rx.await.unwrap(), Err(Error::Unexpected(_))));
        assert!(!b_rx.await.unwrap().unwrap().created);
    }

    #[tokio::test]
    async fn a_post_whose_caller_stopped_waiting_is_still_stored_and_published() {
        let mut messages = MockMessageRepo::new();
        messages.expect_insert().times(1).returning(|_| {
            Ok(Inserted::New {
                id: MessageId(5),
                seq: Seq(1),
            })
        });
        let mut bus = MockEventBus::new();
        bus.expect_publish().times(1).returning(|_| Ok(()));
        let (a, a_rx) = job(new(1, "gone"));
        drop(a_rx);
        commit(&messages, &bus, vec![a]).await;
    }
}
