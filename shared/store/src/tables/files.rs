//! Uploaded files (`file_uploads`). Rows of a user with the same bytes share a stored object and
//! one processing result, so status changes apply to all of them at once.

use bestchat_domain::ErrorCode;
use bestchat_domain::file::{FileKind, FileRecord, FileStatus, Processed};
use bestchat_domain::ids::{FileId, UserId};
use bestchat_domain::message::MessageError;
use bestchat_domain::time::Timestamp;

use crate::sql::Sql;

macro_rules! columns {
    () => {
        "id, user_id, name, content_type, size_bytes, sha256, kind, status, pages, text_chars,
         width, height, error_code, error_message, created_at, updated_at"
    };
}

const INSERT: Sql = Sql::same(concat!(
    "INSERT INTO file_uploads (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
));
const GET: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM file_uploads WHERE user_id = $1 AND id = $2"
));
const BY_IDS: Sql = Sql::differs(
    concat!(
        "SELECT ",
        columns!(),
        " FROM file_uploads WHERE user_id = $1 AND id = ANY($2)"
    ),
    concat!(
        "SELECT ",
        columns!(),
        " FROM file_uploads WHERE user_id = ?1 AND id IN (SELECT value FROM json_each(?2))"
    ),
);
const LIST_FIRST: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM file_uploads WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
));
const LIST_AFTER: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM file_uploads WHERE user_id = $1 AND (created_at, id) < ($2, $3)
      ORDER BY created_at DESC, id DESC LIMIT $4"
));
const WITH_BYTES: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM file_uploads WHERE user_id = $1 AND sha256 = $2 AND status <> 'uploading'
      ORDER BY created_at DESC, id DESC LIMIT 1"
));
/// Each content once, uploads not yet completed included (they hold their room).
const STORAGE: Sql = Sql::same(
    "SELECT CAST(COALESCE(SUM(size_bytes), 0) AS bigint) FROM (
        SELECT MAX(size_bytes) AS size_bytes FROM file_uploads WHERE user_id = $1 GROUP BY sha256
    ) AS contents",
);
const START: Sql = Sql::same(
    "UPDATE file_uploads SET status = 'processing', kind = $3, content_type = $4, updated_at = $5
    WHERE user_id = $1 AND status = 'uploading'
      AND sha256 = (SELECT sha256 FROM file_uploads WHERE user_id = $1 AND id = $2)",
);
const FINISH: Sql = Sql::same(concat!(
    "UPDATE file_uploads SET status = $3, kind = COALESCE($4, kind),
        content_type = COALESCE($5, content_type), pages = $6, text_chars = $7, width = $8,
        height = $9, error_code = $10, error_message = $11, updated_at = $12
    WHERE user_id = $1 AND sha256 = $2 AND status = 'processing' RETURNING ",
    columns!()
));
const ATTACH: Sql = Sql::differs(
    "UPDATE file_uploads SET conversation_id = $3
    WHERE user_id = $1 AND id = ANY($2) AND conversation_id IS NULL",
    "UPDATE file_uploads SET conversation_id = ?3
    WHERE user_id = ?1 AND id IN (SELECT value FROM json_each(?2)) AND conversation_id IS NULL",
);
const OF_CONVERSATION: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM file_uploads WHERE user_id = $1 AND conversation_id = $2"
));
const DELETE: Sql = Sql::same(concat!(
    "DELETE FROM file_uploads WHERE user_id = $1 AND id = $2 RETURNING ",
    columns!()
));
const IN_USE: Sql =
    Sql::same("SELECT EXISTS (SELECT 1 FROM file_uploads WHERE user_id = $1 AND sha256 = $2)");
const EXPIRE: Sql = Sql::same(concat!(
    "DELETE FROM file_uploads WHERE id IN (
        SELECT id FROM file_uploads WHERE status = 'uploading' AND created_at < $1
        ORDER BY created_at LIMIT $2
    ) RETURNING ",
    columns!()
));

/// A row as both stores read it, before its enums are parsed.
struct FileRow {
    id: uuid::Uuid,
    user_id: uuid::Uuid,
    name: String,
    content_type: String,
    size_bytes: i64,
    sha256: String,
    kind: String,
    status: String,
    pages: Option<i32>,
    text_chars: Option<i64>,
    width: Option<i32>,
    height: Option<i32>,
    error_code: Option<String>,
    error_message: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl FileRow {
    fn into_record(self) -> FileRecord {
        let error = self.error_code.as_deref().map(|code| MessageError {
            code: ErrorCode::parse(code).unwrap_or(ErrorCode::Internal),
            message: self.error_message.clone().unwrap_or_default(),
        });
        FileRecord {
            id: FileId::from_uuid(self.id),
            user_id: UserId::from_uuid(self.user_id),
            name: self.name,
            content_type: self.content_type,
            size_bytes: self.size_bytes,
            sha256: self.sha256,
            kind: FileKind::parse(&self.kind).unwrap_or(FileKind::Document),
            status: FileStatus::parse(&self.status).unwrap_or(FileStatus::Failed),
            pages: self.pages.and_then(|n| u32::try_from(n).ok()),
            text_chars: self.text_chars,
            width: self.width.and_then(|n| u32::try_from(n).ok()),
            height: self.height.and_then(|n| u32::try_from(n).ok()),
            error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// The columns `FINISH` sets, from a processing outcome.
struct Outcome {
    status: &'static str,
    kind: Option<&'static str>,
    content_type: Option<String>,
    pages: Option<i32>,
    text_chars: Option<i64>,
    width: Option<i32>,
    height: Option<i32>,
    error_code: Option<&'static str>,
    error_message: Option<String>,
}

fn as_i32(n: Option<u32>) -> Option<i32> {
    n.and_then(|n| i32::try_from(n).ok())
}

impl Outcome {
    fn of(outcome: &Result<Processed, MessageError>) -> Self {
        match outcome {
            Ok(p) => Self {
                status: FileStatus::Ready.as_str(),
                kind: p.kind.map(FileKind::as_str),
                content_type: p.content_type.clone(),
                pages: as_i32(p.pages),
                text_chars: p.text_chars,
                width: as_i32(p.width),
                height: as_i32(p.height),
                error_code: None,
                error_message: None,
            },
            Err(e) => Self {
                status: FileStatus::Failed.as_str(),
                kind: None,
                content_type: None,
                pages: None,
                text_chars: None,
                width: None,
                height: None,
                error_code: Some(e.code.as_str()),
                error_message: Some(e.message.clone()),
            },
        }
    }
}

fn id_strings(ids: &[FileId]) -> String {
    serde_json::Value::from(ids.iter().map(|id| id.to_string()).collect::<Vec<_>>()).to_string()
}

fn uuids(ids: &[FileId]) -> Vec<uuid::Uuid> {
    ids.iter().map(|id| *id.as_uuid()).collect()
}

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::ConversationId;
    use bestchat_domain::page::{CursorKey, Page, PageRequest};
    use bestchat_domain::ports::store::{FileStore, StoreError};
    use tokio_postgres::Row;

    use crate::postgres::{PgStore, db_error, sql_limit};

    fn from_row(row: &Row) -> Result<FileRecord, StoreError> {
        let get = |e| db_error(e);
        Ok(FileRow {
            id: row.try_get(0).map_err(get)?,
            user_id: row.try_get(1).map_err(get)?,
            name: row.try_get(2).map_err(get)?,
            content_type: row.try_get(3).map_err(get)?,
            size_bytes: row.try_get(4).map_err(get)?,
            sha256: row.try_get(5).map_err(get)?,
            kind: row.try_get(6).map_err(get)?,
            status: row.try_get(7).map_err(get)?,
            pages: row.try_get(8).map_err(get)?,
            text_chars: row.try_get(9).map_err(get)?,
            width: row.try_get(10).map_err(get)?,
            height: row.try_get(11).map_err(get)?,
            error_code: row.try_get(12).map_err(get)?,
            error_message: row.try_get(13).map_err(get)?,
            created_at: row.try_get(14).map_err(get)?,
            updated_at: row.try_get(15).map_err(get)?,
        }
        .into_record())
    }

    impl PgStore {
        async fn file_rows(
            &self,
            sql: &Sql,
            params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        ) -> Result<Vec<FileRecord>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(sql.postgres())
                .await
                .map_err(db_error)?;
            client
                .query(&stmt, params)
                .await
                .map_err(db_error)?
                .iter()
                .map(from_row)
                .collect()
        }
    }

    #[async_trait]
    impl FileStore for PgStore {
        async fn create_file(&self, f: &FileRecord) -> Result<(), StoreError> {
            self.file_rows(
                &INSERT,
                &[
                    f.id.as_uuid(),
                    f.user_id.as_uuid(),
                    &f.name,
                    &f.content_type,
                    &f.size_bytes,
                    &f.sha256,
                    &f.kind.as_str(),
                    &f.status.as_str(),
                    &as_i32(f.pages),
                    &f.text_chars,
                    &as_i32(f.width),
                    &as_i32(f.height),
                    &f.error.as_ref().map(|e| e.code.as_str()),
                    &f.error.as_ref().map(|e| e.message.clone()),
                    &f.created_at,
                    &f.updated_at,
                ],
            )
            .await?;
            Ok(())
        }

        async fn get_file(
            &self,
            user: UserId,
            id: FileId,
        ) -> Result<Option<FileRecord>, StoreError> {
            let rows = self
                .file_rows(&GET, &[user.as_uuid(), id.as_uuid()])
                .await?;
            Ok(rows.into_iter().next())
        }

        async fn files_by_ids(
            &self,
            user: UserId,
            ids: &[FileId],
        ) -> Result<Vec<FileRecord>, StoreError> {
            self.file_rows(&BY_IDS, &[user.as_uuid(), &uuids(ids)])
                .await
        }

        async fn list_files(
            &self,
            user: UserId,
            page: &PageRequest,
        ) -> Result<Page<FileRecord>, StoreError> {
            let limit = sql_limit(page.fetch_limit());
            let rows = match page.after {
                None => {
                    self.file_rows(&LIST_FIRST, &[user.as_uuid(), &limit])
                        .await?
                }
                Some(after) => {
                    self.file_rows(&LIST_AFTER, &[user.as_uuid(), &after.at, &after.id, &limit])
                        .await?
                }
            };
            Ok(Page::from_rows(rows, page, |f| CursorKey {
                at: f.created_at,
                id: *f.id.as_uuid(),
            }))
        }

        async fn file_with_bytes(
            &self,
            user: UserId,
            sha256: &str,
        ) -> Result<Option<FileRecord>, StoreError> {
            let rows = self
                .file_rows(&WITH_BYTES, &[user.as_uuid(), &sha256])
                .await?;
            Ok(rows.into_iter().next())
        }

        async fn storage_bytes(&self, user: UserId) -> Result<i64, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(STORAGE.postgres())
                .await
                .map_err(db_error)?;
            let row = client
                .query_one(&stmt, &[user.as_uuid()])
                .await
                .map_err(db_error)?;
            row.try_get(0).map_err(db_error)
        }

        async fn start_processing(
            &self,
            user: UserId,
            id: FileId,
            kind: FileKind,
            content_type: &str,
            at: Timestamp,
        ) -> Result<Option<FileRecord>, StoreError> {
            self.file_rows(
                &START,
                &[
                    user.as_uuid(),
                    id.as_uuid(),
                    &kind.as_str(),
                    &content_type,
                    &at,
                ],
            )
            .await?;
            self.get_file(user, id).await
        }

        async fn finish_processing(
            &self,
            user: UserId,
            sha256: &str,
            outcome: &Result<Processed, MessageError>,
            at: Timestamp,
        ) -> Result<Vec<FileRecord>, StoreError> {
            let o = Outcome::of(outcome);
            self.file_rows(
                &FINISH,
                &[
                    user.as_uuid(),
                    &sha256,
                    &o.status,
                    &o.kind,
                    &o.content_type,
                    &o.pages,
                    &o.text_chars,
                    &o.width,
                    &o.height,
                    &o.error_code,
                    &o.error_message,
                    &at,
                ],
            )
            .await
        }

        async fn attach_files(
            &self,
            user: UserId,
            ids: &[FileId],
            conversation: ConversationId,
        ) -> Result<(), StoreError> {
            self.file_rows(
                &ATTACH,
                &[user.as_uuid(), &uuids(ids), conversation.as_uuid()],
            )
            .await?;
            Ok(())
        }

        async fn files_of_conversation(
            &self,
            user: UserId,
            conversation: ConversationId,
        ) -> Result<Vec<FileRecord>, StoreError> {
            self.file_rows(&OF_CONVERSATION, &[user.as_uuid(), conversation.as_uuid()])
                .await
        }

        async fn delete_file(
            &self,
            user: UserId,
            id: FileId,
        ) -> Result<Option<FileRecord>, StoreError> {
            let rows = self
                .file_rows(&DELETE, &[user.as_uuid(), id.as_uuid()])
                .await?;
            Ok(rows.into_iter().next())
        }

        async fn bytes_in_use(&self, user: UserId, sha256: &str) -> Result<bool, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(IN_USE.postgres())
                .await
                .map_err(db_error)?;
            let row = client
                .query_one(&stmt, &[user.as_uuid(), &sha256])
                .await
                .map_err(db_error)?;
            row.try_get(0).map_err(db_error)
        }

        async fn expire_uploads(
            &self,
            before: Timestamp,
            limit: u32,
        ) -> Result<Vec<FileRecord>, StoreError> {
            self.file_rows(&EXPIRE, &[&before, &sql_limit(limit)]).await
        }
    }
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::ConversationId;
    use bestchat_domain::page::{CursorKey, Page, PageRequest};
    use bestchat_domain::ports::store::{FileStore, StoreError};
    use bestchat_domain::time::to_micros;
    use rusqlite::{Row, ToSql, params};

    use crate::sqlite::{SqliteStore, db_error, sql_limit, time_at, uuid_at};

    fn read_row(row: &Row<'_>) -> rusqlite::Result<FileRecord> {
        Ok(FileRow {
            id: uuid_at(row, 0)?,
            user_id: uuid_at(row, 1)?,
            name: row.get(2)?,
            content_type: row.get(3)?,
            size_bytes: row.get(4)?,
            sha256: row.get(5)?,
            kind: row.get(6)?,
            status: row.get(7)?,
            pages: row.get(8)?,
            text_chars: row.get(9)?,
            width: row.get(10)?,
            height: row.get(11)?,
            error_code: row.get(12)?,
            error_message: row.get(13)?,
            created_at: time_at(row, 14)?,
            updated_at: time_at(row, 15)?,
        }
        .into_record())
    }

    impl SqliteStore {
        async fn file_rows(
            &self,
            sql: &'static Sql,
            params: Vec<Box<dyn ToSql + Send>>,
        ) -> Result<Vec<FileRecord>, StoreError> {
            self.call(move |conn| {
                let mut stmt = conn.prepare_cached(&sql.sqlite()).map_err(db_error)?;
                let refs: Vec<&dyn ToSql> =
                    params.iter().map(|p| p.as_ref() as &dyn ToSql).collect();
                stmt.query_map(refs.as_slice(), read_row)
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                    .map_err(db_error)
            })
            .await
        }
    }

    fn boxed<T: ToSql + Send + 'static>(value: T) -> Box<dyn ToSql + Send> {
        Box::new(value)
    }

    #[async_trait]
    impl FileStore for SqliteStore {
        async fn create_file(&self, f: &FileRecord) -> Result<(), StoreError> {
            self.file_rows(
                &INSERT,
                vec![
                    boxed(f.id.to_string()),
                    boxed(f.user_id.to_string()),
                    boxed(f.name.clone()),
                    boxed(f.content_type.clone()),
                    boxed(f.size_bytes),
                    boxed(f.sha256.clone()),
                    boxed(f.kind.as_str()),
                    boxed(f.status.as_str()),
                    boxed(as_i32(f.pages)),
                    boxed(f.text_chars),
                    boxed(as_i32(f.width)),
                    boxed(as_i32(f.height)),
                    boxed(f.error.as_ref().map(|e| e.code.as_str())),
                    boxed(f.error.as_ref().map(|e| e.message.clone())),
                    boxed(to_micros(f.created_at)),
                    boxed(to_micros(f.updated_at)),
                ],
            )
            .await?;
            Ok(())
        }

        async fn get_file(
            &self,
            user: UserId,
            id: FileId,
        ) -> Result<Option<FileRecord>, StoreError> {
            let rows = self
                .file_rows(&GET, vec![boxed(user.to_string()), boxed(id.to_string())])
                .await?;
            Ok(rows.into_iter().next())
        }

        async fn files_by_ids(
            &self,
            user: UserId,
            ids: &[FileId],
        ) -> Result<Vec<FileRecord>, StoreError> {
            self.file_rows(
                &BY_IDS,
                vec![boxed(user.to_string()), boxed(id_strings(ids))],
            )
            .await
        }

        async fn list_files(
            &self,
            user: UserId,
            page: &PageRequest,
        ) -> Result<Page<FileRecord>, StoreError> {
            let limit = sql_limit(page.fetch_limit());
            let rows = match page.after {
                None => {
                    self.file_rows(&LIST_FIRST, vec![boxed(user.to_string()), boxed(limit)])
                        .await?
                }
                Some(after) => {
                    self.file_rows(
                        &LIST_AFTER,
                        vec![
                            boxed(user.to_string()),
                            boxed(to_micros(after.at)),
                            boxed(after.id.to_string()),
                            boxed(limit),
                        ],
                    )
                    .await?
                }
            };
            Ok(Page::from_rows(rows, page, |f| CursorKey {
                at: f.created_at,
                id: *f.id.as_uuid(),
            }))
        }

        async fn file_with_bytes(
            &self,
            user: UserId,
            sha256: &str,
        ) -> Result<Option<FileRecord>, StoreError> {
            let rows = self
                .file_rows(
                    &WITH_BYTES,
                    vec![boxed(user.to_string()), boxed(sha256.to_owned())],
                )
                .await?;
            Ok(rows.into_iter().next())
        }

        async fn storage_bytes(&self, user: UserId) -> Result<i64, StoreError> {
            self.call(move |conn| {
                conn.prepare_cached(&STORAGE.sqlite())
                    .and_then(|mut stmt| stmt.query_row(params![user.to_string()], |r| r.get(0)))
                    .map_err(db_error)
            })
            .await
        }

        async fn start_processing(
            &self,
            user: UserId,
            id: FileId,
            kind: FileKind,
            content_type: &str,
            at: Timestamp,
        ) -> Result<Option<FileRecord>, StoreError> {
            let content_type = content_type.to_owned();
            self.call(move |conn| {
                conn.prepare_cached(&START.sqlite())
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            user.to_string(),
                            id.to_string(),
                            kind.as_str(),
                            content_type,
                            to_micros(at)
                        ])
                    })
                    .map_err(db_error)
            })
            .await?;
            self.get_file(user, id).await
        }

        async fn finish_processing(
            &self,
            user: UserId,
            sha256: &str,
            outcome: &Result<Processed, MessageError>,
            at: Timestamp,
        ) -> Result<Vec<FileRecord>, StoreError> {
            let o = Outcome::of(outcome);
            self.file_rows(
                &FINISH,
                vec![
                    boxed(user.to_string()),
                    boxed(sha256.to_owned()),
                    boxed(o.status),
                    boxed(o.kind),
                    boxed(o.content_type),
                    boxed(o.pages),
                    boxed(o.text_chars),
                    boxed(o.width),
                    boxed(o.height),
                    boxed(o.error_code),
                    boxed(o.error_message),
                    boxed(to_micros(at)),
                ],
            )
            .await
        }

        async fn attach_files(
            &self,
            user: UserId,
            ids: &[FileId],
            conversation: ConversationId,
        ) -> Result<(), StoreError> {
            let ids = id_strings(ids);
            self.call(move |conn| {
                conn.prepare_cached(&ATTACH.sqlite())
                    .and_then(|mut stmt| {
                        stmt.execute(params![user.to_string(), ids, conversation.to_string()])
                    })
                    .map_err(db_error)
            })
            .await?;
            Ok(())
        }

        async fn files_of_conversation(
            &self,
            user: UserId,
            conversation: ConversationId,
        ) -> Result<Vec<FileRecord>, StoreError> {
            self.file_rows(
                &OF_CONVERSATION,
                vec![boxed(user.to_string()), boxed(conversation.to_string())],
            )
            .await
        }

        async fn delete_file(
            &self,
            user: UserId,
            id: FileId,
        ) -> Result<Option<FileRecord>, StoreError> {
            let rows = self
                .file_rows(
                    &DELETE,
                    vec![boxed(user.to_string()), boxed(id.to_string())],
                )
                .await?;
            Ok(rows.into_iter().next())
        }

        async fn bytes_in_use(&self, user: UserId, sha256: &str) -> Result<bool, StoreError> {
            let sha256 = sha256.to_owned();
            self.call(move |conn| {
                conn.prepare_cached(&IN_USE.sqlite())
                    .and_then(|mut stmt| {
                        stmt.query_row(params![user.to_string(), sha256], |r| r.get(0))
                    })
                    .map_err(db_error)
            })
            .await
        }

        async fn expire_uploads(
            &self,
            before: Timestamp,
            limit: u32,
        ) -> Result<Vec<FileRecord>, StoreError> {
            self.file_rows(
                &EXPIRE,
                vec![boxed(to_micros(before)), boxed(sql_limit(limit))],
            )
            .await
        }
    }
}
