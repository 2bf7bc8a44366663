//! Identifiers. Row ids are UUIDv7 (time-ordered, good index locality); a user's id is derived
//! from the token subject so every function can compute it without a lookup.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

use crate::error::DomainError;
use crate::limits::SUBJECT_MAX_CHARS;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ::schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A user, derived from the verified token's `sub` claim.
    UserId
);
uuid_id!(ConversationId);
uuid_id!(MessageId);
uuid_id!(
    /// A user-registered tool.
    ToolId
);
uuid_id!(
    /// An uploaded file (its bytes are stored once per user and hash).
    FileId
);
uuid_id!(
    /// One tool call the model asked for, as decided and run.
    ToolExecutionId
);

/// Namespace for deriving user ids from token subjects (UUIDv5).
const USER_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_3e0a_52c4_4d59_9a57_0c2e_b3a1_7d44);

impl UserId {
    /// The same subject always yields the same user id.
    pub fn from_subject(subject: &Subject) -> Self {
        Self(Uuid::new_v5(&USER_NAMESPACE, subject.as_str().as_bytes()))
    }
}

/// The `sub` claim of a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject(String);

impl Subject {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.is_empty() || raw.chars().count() > SUBJECT_MAX_CHARS {
            return Err(DomainError::unauthorized(
                "the token's subject is empty or too long",
            ));
        }
        // An identity provider's subjects are printable; a control character is a forgery.
        if raw.chars().any(char::is_control) {
            return Err(DomainError::unauthorized(
                "the token's subject holds a control character",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_is_stable_per_subject() {
        let alice = Subject::parse("alice").unwrap();
        let bob = Subject::parse("bob").unwrap();
        assert_eq!(UserId::from_subject(&alice), UserId::from_subject(&alice));
        assert_ne!(UserId::from_subject(&alice), UserId::from_subject(&bob));
    }

    #[test]
    fn generated_ids_are_time_ordered() {
        let a = MessageId::generate();
        let b = MessageId::generate();
        assert!(a < b);
    }

    #[test]
    fn subject_rejects_empty_and_oversized() {
        assert!(Subject::parse("").is_err());
        assert!(Subject::parse(&"x".repeat(SUBJECT_MAX_CHARS + 1)).is_err());
        assert!(Subject::parse(&"x".repeat(SUBJECT_MAX_CHARS)).is_ok());
    }
}
