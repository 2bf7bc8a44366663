//! Delivery of one message's events to every connection of its user that is subscribed to the
//! conversation. Deltas are numbered and buffered before they are posted, so a connection that
//! asks to `resume` gets exactly what it missed: the turn is the only writer of a message's
//! frames, and it serves pending resume requests itself, in order, before carrying on live.

use std::time::Instant;

use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::ports::realtime::{ConnectionId, PublishError};
use bestchat_domain::wire::{DeltaChannel, ServerEvent};

use super::frames::{delta_frames, encode_event};
use super::ports::FanoutPorts;

pub struct Fanout<'a> {
    ports: FanoutPorts<'a>,
    user: UserId,
    conversation: ConversationId,
    message: MessageId,
    live: Vec<ConnectionId>,
    /// The last `seq` produced; frames 1..=last_seq are in the buffer.
    last_seq: u64,
    refreshed: Instant,
    /// The user's frames passed their share of the resume buffer: the answer must end.
    over_budget: bool,
}

impl<'a> Fanout<'a> {
    pub async fn start(
        ports: FanoutPorts<'a>,
        user: UserId,
        conversation: ConversationId,
        message: MessageId,
    ) -> Self {
        let mut fanout = Self {
            ports,
            user,
            conversation,
            message,
            live: Vec::new(),
            last_seq: 0,
            refreshed: Instant::now(),
            over_budget: false,
        };
        fanout.refresh().await;
        fanout
    }

    /// Picks up new subscribers and serves pending resume requests.
    pub async fn refresh(&mut self) {
        self.refreshed = Instant::now();
        let connections = match self.ports.devices.connections.of_user(self.user).await {
            Ok(c) => c,
            Err(e) => {
                return tracing::warn!(error = %e, "connection list unavailable; keeping the current one");
            }
        };
        let mut reachable = Vec::new();
        for c in connections {
            // A resume request is served here whether or not the connection is subscribed; one
            // that somebody else took is theirs to finish, live frames included.
            let (resumed, served_elsewhere) = if c.pending_resumes.contains(&self.message) {
                match self
                    .ports
                    .devices
                    .connections
                    .claim_resume(&c.id, self.message)
                    .await
                {
                    Ok(Some(after)) => {
                        self.replay(&c.id, after).await;
                        (true, false)
                    }
                    _ => (false, true),
                }
            } else {
                (false, false)
            };
            let subscribed = c.subscriptions.contains(&self.conversation) && !served_elsewhere;
            if resumed || subscribed || self.live.contains(&c.id) {
                reachable.push(c.id);
            }
        }
        self.live = reachable;
    }

    pub async fn refresh_if_due(&mut self) {
        if self.refreshed.elapsed() >= self.ports.realtime.connection_refresh {
            self.refresh().await;
        }
    }

    /// Sends `id` the frames after `after` that this turn has produced so far.
    async fn replay(&mut self, id: &ConnectionId, after: u64) {
        let frames = match self.ports.buffer.read_after(self.message, after).await {
            Ok(f) => f,
            Err(e) => return tracing::warn!(error = %e, "stream buffer unavailable for a resume"),
        };
        for (seq, frame) in frames.into_iter().filter(|(s, _)| *s <= self.last_seq) {
            if let Err(PublishError::Gone) = self
                .ports
                .devices
                .publisher
                .post(id, frame.as_bytes())
                .await
            {
                tracing::debug!(%id, seq, "resuming connection left");
                return;
            }
        }
    }

    /// Numbers, buffers and posts one batch of deltas.
    pub async fn delta(&mut self, text: &str, channel: DeltaChannel) {
        self.count_buffered(text.len()).await;
        let frames = delta_frames(
            self.conversation,
            self.message,
            self.last_seq + 1,
            text,
            channel,
            self.ports.realtime.frame_max_bytes,
        );
        for (seq, frame) in frames {
            self.last_seq = seq;
            // Buffered before posted: a client that misses this frame can get it back.
            if let Err(e) = self.ports.buffer.append(self.message, seq, &frame).await {
                tracing::warn!(error = %e, seq, "stream buffer unavailable; resume may miss this frame");
            }
            self.post(frame.into_bytes()).await;
        }
    }

    /// Posts an event that is not part of the numbered stream.
    pub async fn event(&mut self, event: &ServerEvent) {
        if let Some(frame) = encode_event(event, self.ports.realtime.frame_max_bytes) {
            self.post(frame).await;
        }
    }

    /// Posts to every live connection at once; a connection that is gone is forgotten.
    async fn post(&mut self, frame: Vec<u8>) {
        let gone = self.ports.devices.post_all(&self.live, frame).await;
        self.live.retain(|id| !gone.contains(id));
    }

    /// The adapters and settings the fanout streams through.
    pub(super) fn ports(&self) -> &FanoutPorts<'a> {
        &self.ports
    }

    pub fn delivered(&self) -> u64 {
        self.last_seq
    }

    /// Whether the user's frames passed their share of the resume buffer.
    pub fn over_budget(&self) -> bool {
        self.over_budget
    }

    /// Counts a batch against the user's share of the resume buffer (a shared Redis in AWS),
    /// over the buffer's lifetime. A count that cannot be made does not stop the answer.
    async fn count_buffered(&mut self, bytes: usize) {
        let realtime = &self.ports.realtime;
        let amount = i64::try_from(bytes).unwrap_or(i64::MAX);
        match self
            .ports
            .cache
            .add(&buffered_key(self.user), amount, realtime.stream_buffer_ttl)
            .await
        {
            Ok(total)
                if u64::try_from(total).unwrap_or(u64::MAX)
                    > realtime.stream_buffer_max_bytes_per_user =>
            {
                self.over_budget = true;
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot count the user's buffered bytes"),
        }
    }
}

/// The bytes of a user's frames the resume buffer holds (within its TTL).
fn buffered_key(user: UserId) -> String {
    format!("buffered:{user}")
}

#[cfg(test)]
#[cfg(feature = "sqlite")]
mod tests {
    use std::time::Duration;

    use bestchat_domain::message::{Message, MessageStatus};
    use bestchat_domain::time::now;
    use bestchat_platform::publish::Outgoing;
    use tokio::sync::mpsc::Receiver;

    use super::*;
    use crate::state::AppState;
    use crate::testing;

    async fn device(
        state: &AppState,
        name: &str,
        user: UserId,
        conversation: Option<ConversationId>,
    ) -> (ConnectionId, Receiver<Outgoing>) {
        let id = ConnectionId::parse(name).unwrap();
        let rx = state.hub.as_ref().unwrap().attach(id.clone());
        state
            .connections
            .register(&id, user, now(), Duration::from_secs(60))
            .await
            .unwrap();
        if let Some(c) = conversation {
            state.connections.subscribe(&id, user, c).await.unwrap();
        }
        (id, rx)
    }

    #[tokio::test]
    async fn deltas_are_numbered_buffered_and_sent_to_every_subscribed_device() {
        let embedded = testing::state(&[]).await;
        let state = &embedded.state;
        let (user, conversation, message) = (
            UserId::generate(),
            ConversationId::generate(),
            MessageId::generate(),
        );
        let (_, mut phone) = device(state, "phone=", user, Some(conversation)).await;
        let (_, mut other) = device(state, "other=", user, None).await;
        let (_, mut stranger) =
            device(state, "stranger=", UserId::generate(), Some(conversation)).await;
        let mut fanout = Fanout::start(state.fanout_ports(), user, conversation, message).await;
        fanout.delta("Hello", DeltaChannel::Text).await;
        fanout.delta(" world", DeltaChannel::Reasoning).await;
        assert_eq!(fanout.delivered(), 2);
        let seen = testing::drain(&mut phone);
        assert_eq!(
            seen.iter()
                .map(|e| e["seq"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(seen[1]["channel"], "reasoning");
        assert!(testing::drain(&mut other).is_empty(), "not subscribed");
        assert!(testing::drain(&mut stranger).is_empty(), "another user's");
        let buffered = state.stream_buffer.read_after(message, 0).await.unwrap();
        assert_eq!(buffered.len(), 2, "buffered for resume");
    }

    #[tokio::test]
    async fn the_end_reaches_resuming_devices_after_what_they_missed_once() {
        let embedded = testing::state(&[]).await;
        let state = &embedded.state;
        let user = UserId::generate();
        let conversation = ConversationId::generate();
        let message = MessageId::generate();
        for (seq, text) in [(1, "a"), (2, "b"), (3, "c")] {
            let frame = format!(r#"{{"type":"message.delta","seq":{seq},"text":"{text}"}}"#);
            state
                .stream_buffer
                .append(message, seq, &frame)
                .await
                .unwrap();
        }
        let (resuming, mut resumer) = device(state, "resumer=", user, None).await;
        state
            .connections
            .request_resume(&resuming, message, 1)
            .await
            .unwrap();
        let (_, mut watcher) = device(state, "watcher=", user, Some(conversation)).await;
        let (_, mut bystander) = device(state, "bystander=", user, None).await;
        let ended = Message {
            id: message,
            content: "abc".into(),
            ..testing::assistant(user, conversation, MessageStatus::Complete)
        };
        let end = [crate::turn::job::completed_event(ended.clone())];
        state
            .devices()
            .announce_end(state.stream_buffer.as_ref(), &ended, &end)
            .await;
        let got = testing::drain(&mut resumer);
        let kinds: Vec<String> = got
            .iter()
            .map(|e| format!("{}{}", e["type"].as_str().unwrap(), e["seq"]))
            .collect();
        assert_eq!(
            kinds,
            vec!["message.delta2", "message.delta3", "message.completednull"]
        );
        let watched = testing::drain(&mut watcher);
        assert_eq!(watched.len(), 1);
        assert_eq!(watched[0]["type"], "message.completed");
        assert!(testing::drain(&mut bystander).is_empty());
        // Served once: a second announcement does not replay to the resumer.
        state
            .devices()
            .announce_end(state.stream_buffer.as_ref(), &ended, &end)
            .await;
        assert!(testing::drain(&mut resumer).is_empty());
    }
}
