//! Keyset pagination. A cursor names the last row a page returned by its sort key (a timestamp
//! and the row id); it is opaque to clients.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use uuid::Uuid;

use crate::error::DomainError;
use crate::limits::{CURSOR_MAX_CHARS, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX};
use crate::time::{Timestamp, from_micros, to_micros};

const CURSOR_VERSION: &str = "v1";
/// The times a cursor may name, 0001-01-01 to 9999-12-31 UTC: every row's time is in it, and
/// both stores (PostgreSQL's `timestamptz` included) can compare with any of them.
const CURSOR_MICROS_MIN: i64 = -62_135_596_800_000_000;
const CURSOR_MICROS_MAX: i64 = 253_402_300_799_999_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorKey {
    pub at: Timestamp,
    pub id: Uuid,
}

impl CursorKey {
    pub fn encode(&self) -> String {
        let raw = format!("{CURSOR_VERSION}:{}:{}", to_micros(self.at), self.id);
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(cursor: &str) -> Result<Self, DomainError> {
        if cursor.len() > CURSOR_MAX_CHARS {
            return Err(DomainError::invalid_cursor());
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| DomainError::invalid_cursor())?;
        let text = String::from_utf8(bytes).map_err(|_| DomainError::invalid_cursor())?;
        let mut parts = text.splitn(3, ':');
        let (Some(CURSOR_VERSION), Some(micros), Some(id)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(DomainError::invalid_cursor());
        };
        let at = micros
            .parse::<i64>()
            .ok()
            .filter(|m| (CURSOR_MICROS_MIN..=CURSOR_MICROS_MAX).contains(m))
            .and_then(from_micros)
            .ok_or_else(DomainError::invalid_cursor)?;
        let id = Uuid::parse_str(id).map_err(|_| DomainError::invalid_cursor())?;
        Ok(Self { at, id })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// Start after this row; `None` for the first page.
    pub after: Option<CursorKey>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: PAGE_LIMIT_DEFAULT,
            after: None,
        }
    }
}

impl PageRequest {
    /// Parses the `limit` and `cursor` query parameters.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, DomainError> {
        let limit = match limit {
            None => PAGE_LIMIT_DEFAULT,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=PAGE_LIMIT_MAX).contains(n))
                .ok_or_else(|| {
                    DomainError::validation(format!(
                        "limit must be an integer from 1 to {PAGE_LIMIT_MAX}"
                    ))
                })?,
        };
        let after = cursor.map(CursorKey::decode).transpose()?;
        Ok(Self { limit, after })
    }

    /// Rows a store should fetch: one more than the page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> u32 {
        self.limit + 1
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ::schemars::JsonSchema)]
#[schemars(rename = "{T}Page")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A whole list in one answer (`{"items": [...]}`), for lists a user keeps short.
#[derive(Debug, Clone, PartialEq, Serialize, ::schemars::JsonSchema)]
#[schemars(rename = "{T}List")]
pub struct Items<T> {
    pub items: Vec<T>,
}

impl<T: Serialize> Page<T> {
    /// The page cut to what fits `max_bytes` as JSON (a list must fit one response), keeping
    /// at least its first item; when cut, the cursor continues right after the last item kept.
    pub fn within_bytes(mut self, max_bytes: usize, key: impl Fn(&T) -> CursorKey) -> Self {
        let mut used = 0usize;
        let mut keep = 0usize;
        for item in &self.items {
            let size = serde_json::to_vec(item).map_or(usize::MAX, |b| b.len() + 1);
            if keep > 0 && used.saturating_add(size) > max_bytes {
                break;
            }
            used = used.saturating_add(size);
            keep += 1;
        }
        if keep < self.items.len() {
            self.items.truncate(keep);
            self.next_cursor = self.items.last().map(|last| key(last).encode());
        }
        self
    }
}

impl<T> Page<T> {
    /// Builds a page from up to `fetch_limit()` rows in list order.
    pub fn from_rows(
        mut rows: Vec<T>,
        request: &PageRequest,
        key: impl Fn(&T) -> CursorKey,
    ) -> Self {
        let limit = request.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| key(last).encode())
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_micros;
    use crate::time::now;

    #[test]
    fn a_page_is_cut_to_its_byte_budget_and_goes_on_after_the_last_item_kept() {
        let key = |n: &String| CursorKey {
            at: from_micros(i64::try_from(n.len()).unwrap()).unwrap(),
            id: Uuid::nil(),
        };
        let page = Page {
            items: vec!["a".repeat(10), "b".repeat(20), "c".repeat(30)],
            next_cursor: None,
        };
        let cut = page.clone().within_bytes(40, key);
        assert_eq!(cut.items.len(), 2);
        assert_eq!(cut.next_cursor, Some(key(&"b".repeat(20)).encode()));
        let whole = page.clone().within_bytes(1_000, key);
        assert_eq!(whole, page);
        let first = page.within_bytes(1, key);
        assert_eq!(first.items.len(), 1, "at least one item, however large");
    }

    #[test]
    fn cursor_round_trips() {
        let key = CursorKey {
            at: now(),
            id: Uuid::now_v7(),
        };
        assert_eq!(CursorKey::decode(&key.encode()).unwrap(), key);
    }

    #[test]
    fn foreign_cursors_are_refused() {
        for bad in [
            "",
            "abc",
            "!!!",
            &URL_SAFE_NO_PAD.encode("v2:1:x"),
            &"a".repeat(500),
            // Times no store can hold, and numbers that are not times at all.
            &URL_SAFE_NO_PAD.encode(format!("v1:-9000000000000000000:{}", Uuid::nil())),
            &URL_SAFE_NO_PAD.encode(format!("v1:9223372036854775807:{}", Uuid::nil())),
            &URL_SAFE_NO_PAD.encode(format!("v1:99999999999999999999:{}", Uuid::nil())),
            &URL_SAFE_NO_PAD.encode(format!("v1:1e9:{}", Uuid::nil())),
            &URL_SAFE_NO_PAD.encode(format!("v1:1\u{0}:{}", Uuid::nil())),
        ] {
            assert_eq!(
                CursorKey::decode(bad).unwrap_err().code,
                crate::ErrorCode::InvalidCursor
            );
        }
    }

    #[test]
    fn limit_is_bounded() {
        assert_eq!(
            PageRequest::parse(None, None).unwrap().limit,
            PAGE_LIMIT_DEFAULT
        );
        assert_eq!(PageRequest::parse(Some("200"), None).unwrap().limit, 200);
        for bad in ["0", "201", "-1", "ten"] {
            assert!(PageRequest::parse(Some(bad), None).is_err());
        }
    }

    #[test]
    fn next_cursor_only_when_more_rows() {
        let req = PageRequest {
            limit: 2,
            after: None,
        };
        let at = now();
        let key = |n: &u128| CursorKey {
            at,
            id: Uuid::from_u128(*n),
        };
        let full = Page::from_rows(vec![1, 2, 3], &req, key);
        assert_eq!(full.items, vec![1, 2]);
        assert_eq!(
            CursorKey::decode(full.next_cursor.as_deref().unwrap())
                .unwrap()
                .id,
            Uuid::from_u128(2)
        );
        let last = Page::from_rows(vec![1, 2], &req, key);
        assert_eq!(last.next_cursor, None);
    }
}
