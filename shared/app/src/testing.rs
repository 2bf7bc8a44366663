//! What the use cases' own tests share: messages and conversations to work on, and an
//! `AppState` on the embedded adapters (SQLite in a fresh directory, everything else in
//! process).

use bestchat_domain::ids::{ConversationId, UserId};
use bestchat_domain::message::{Message, MessageStatus, Role};
use bestchat_domain::time::now;

/// The JSON events a socket has been sent so far.
pub fn drain(
    socket: &mut tokio::sync::mpsc::Receiver<bestchat_platform::publish::Outgoing>,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while let Ok(bestchat_platform::publish::Outgoing::Frame(frame)) = socket.try_recv() {
        out.push(serde_json::from_slice(&frame).unwrap_or_default());
    }
    out
}

/// An assistant message in `status`, with no content yet.
pub fn assistant(user: UserId, conversation: ConversationId, status: MessageStatus) -> Message {
    Message::new(user, conversation, Role::Assistant, status, now())
}

#[cfg(feature = "sqlite")]
pub use embedded::{conversation, state};

#[cfg(feature = "sqlite")]
mod embedded {
    use std::collections::HashMap;
    use std::sync::Arc;

    use bestchat_domain::conversation::{Conversation, CreateConversation};
    use bestchat_domain::ids::{Subject, UserId};
    use bestchat_domain::time::now;

    use crate::config::Config;
    use crate::state::AppState;

    pub struct Embedded {
        pub state: Arc<AppState>,
        dir: std::path::PathBuf,
    }

    impl Drop for Embedded {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// The state, migrated; `vars` on top of the embedded defaults (echo answers at once).
    pub async fn state(vars: &[(&str, &str)]) -> Embedded {
        let dir = std::env::temp_dir().join(format!("bestchat-app-{}", uuid::Uuid::now_v7()));
        let mut map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        map.insert("BESTCHAT_DATA_DIR".into(), dir.display().to_string());
        map.entry("BESTCHAT_ECHO_DELAY_MS".into())
            .or_insert_with(|| "0".into());
        // Tests drive one user harder than a person would; the limits' own tests set them.
        for class in ["READ", "WRITE", "TURN", "CONNECT"] {
            map.entry(format!("BESTCHAT_RATE_{class}_PER_MINUTE"))
                .or_insert_with(|| "0".into());
        }
        let config = Config::from_lookup(|k| map.get(k).cloned()).expect("config");
        let state = AppState::new(config).expect("state");
        state.migrate().await.expect("migrations");
        Embedded { state, dir }
    }

    /// A user named `subject` with a conversation on the default (echo) model.
    pub async fn conversation(state: &AppState, subject: &str) -> (UserId, Conversation) {
        let subject = Subject::parse(subject).expect("subject");
        let user = UserId::from_subject(&subject);
        state
            .store()
            .ensure_user(user, &subject, &[])
            .await
            .expect("user");
        let conversation = CreateConversation {
            title: None,
            provider: None,
            model: None,
            system_prompt: None,
            settings: None,
        }
        .into_conversation(user, &state.config.default_model, now())
        .expect("conversation");
        state
            .store()
            .create_conversation(&conversation)
            .await
            .expect("stored");
        (user, conversation)
    }
}
