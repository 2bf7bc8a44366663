//! A user's devices: their live connections (the registry port) and the posting of frames to
//! them (the publisher port). Use cases that announce a change take this, not the whole state.

use std::sync::Arc;

use bestchat_domain::ids::{ConversationId, UserId};
use bestchat_domain::message::Message;
use bestchat_domain::ports::realtime::{
    ConnectionId, Connections, PublishError, Publisher, StreamBuffer,
};
use bestchat_domain::tool::ToolExecution;
use bestchat_domain::wire::ServerEvent;
use tokio::task::JoinSet;

use crate::turn::frames::encode_event;

#[derive(Clone)]
pub struct Devices {
    pub connections: Arc<dyn Connections>,
    pub publisher: Arc<dyn Publisher>,
    /// `BESTCHAT_WS_FRAME_MAX_BYTES`: an event that does not fit is not sent.
    pub frame_max_bytes: usize,
}

impl Devices {
    /// Sends `event` to every connection of `user`, whatever it is subscribed to.
    pub async fn to_every_device(&self, user: UserId, event: &ServerEvent) {
        let targets: Vec<ConnectionId> = match self.connections.of_user(user).await {
            Ok(c) => c.into_iter().map(|c| c.id).collect(),
            Err(e) => return tracing::warn!(error = %e, "connection list unavailable"),
        };
        if let Some(frame) = encode_event(event, self.frame_max_bytes) {
            self.post_all(&targets, frame).await;
        }
    }

    /// Sends `event` to every connection of `user` subscribed to `conversation`.
    pub async fn broadcast(&self, user: UserId, conversation: ConversationId, event: &ServerEvent) {
        let targets: Vec<ConnectionId> = match self.connections.of_user(user).await {
            Ok(c) => c
                .into_iter()
                .filter(|c| c.subscriptions.contains(&conversation))
                .map(|c| c.id)
                .collect(),
            Err(e) => return tracing::warn!(error = %e, "connection list unavailable"),
        };
        if let Some(frame) = encode_event(event, self.frame_max_bytes) {
            self.post_all(&targets, frame).await;
        }
    }

    /// Sends `event` to one connection.
    pub async fn send_to(&self, id: &ConnectionId, event: &ServerEvent) {
        if let Some(frame) = encode_event(event, self.frame_max_bytes)
            && let Err(PublishError::Gone) = self.publisher.post(id, &frame).await
        {
            let _ = self.connections.remove(id).await;
        }
    }

    /// Tells every connection of the user that follows the ended `message` how it ended: those
    /// that asked to resume it get the frames they missed first, from `buffer`. A resume
    /// request is served once, here or by `resume` itself (whichever claims it), so no
    /// connection gets the end twice.
    pub async fn announce_end(
        &self,
        buffer: &dyn StreamBuffer,
        message: &Message,
        events: &[ServerEvent],
    ) {
        let connections = match self.connections.of_user(message.user_id).await {
            Ok(c) => c,
            Err(e) => return tracing::warn!(error = %e, "connection list unavailable"),
        };
        let frames: Vec<Vec<u8>> = events
            .iter()
            .filter_map(|e| encode_event(e, self.frame_max_bytes))
            .collect();
        for c in connections {
            let resuming = c.pending_resumes.contains(&message.id);
            if !resuming && !c.subscriptions.contains(&message.conversation_id) {
                continue;
            }
            if resuming {
                match self.connections.claim_resume(&c.id, message.id).await {
                    Ok(Some(after)) => {
                        let missed = buffer
                            .read_after(message.id, after)
                            .await
                            .unwrap_or_default();
                        for (_, frame) in missed {
                            let _ = self.publisher.post(&c.id, frame.as_bytes()).await;
                        }
                    }
                    // Someone else took it, and sends the end with the frames.
                    _ => continue,
                }
            }
            for frame in &frames {
                if let Err(PublishError::Gone) = self.publisher.post(&c.id, frame).await {
                    let _ = self.connections.remove(&c.id).await;
                    break;
                }
            }
        }
    }

    /// A call's stored `tool` message and `tool.result` to the devices following the
    /// conversation, so they show the result as it lands.
    pub async fn tool_result(&self, execution: &ToolExecution, result: &Message) {
        let (user, conversation) = (execution.user_id, execution.conversation_id);
        let created = ServerEvent::MessageCreated {
            message: result.clone(),
        };
        self.broadcast(user, conversation, &created).await;
        let event = ServerEvent::ToolResult {
            conversation_id: conversation,
            message_id: execution.message_id,
            tool_execution_id: execution.id,
            status: execution.status,
            output: execution.output.clone(),
            error: execution.error.clone(),
        };
        self.broadcast(user, conversation, &event).await;
    }

    /// `tool.decided` to every device of the user.
    pub async fn tool_decided(&self, execution: &ToolExecution) {
        let event = ServerEvent::ToolDecided {
            conversation_id: execution.conversation_id,
            message_id: execution.message_id,
            tool_execution_id: execution.id,
            status: execution.status,
            decision: execution.decision.clone(),
        };
        self.to_every_device(execution.user_id, &event).await;
    }

    /// Posts `frame` to `targets` concurrently; returns the connections that are gone, which
    /// are also removed from the registry.
    pub async fn post_all(&self, targets: &[ConnectionId], frame: Vec<u8>) -> Vec<ConnectionId> {
        let frame: Arc<[u8]> = frame.into();
        let mut posts = JoinSet::new();
        for id in targets {
            let (publisher, id, frame) =
                (Arc::clone(&self.publisher), id.clone(), Arc::clone(&frame));
            posts.spawn(async move {
                let result = publisher.post(&id, &frame).await;
                (id, result)
            });
        }
        let mut gone = Vec::new();
        while let Some(joined) = posts.join_next().await {
            match joined {
                Ok((id, Err(PublishError::Gone))) => {
                    tracing::info!(%id, "connection gone; removing it");
                    let _ = self.connections.remove(&id).await;
                    gone.push(id);
                }
                Ok((id, Err(e))) => tracing::warn!(%id, error = %e, "post failed"),
                Ok((_, Ok(()))) => {}
                Err(e) => tracing::warn!(error = %e, "post task failed"),
            }
        }
        gone
    }
}
