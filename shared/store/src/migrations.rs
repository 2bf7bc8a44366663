//! The schema files, embedded so every binary carries the schema it was built for.

use std::borrow::Cow;

use crate::sql::ddl_to_sqlite;

/// One numbered schema file: written once, in PostgreSQL's DDL, and translated for SQLite
/// ([`crate::sql::ddl_to_sqlite`]) unless `migrations/sqlite/` holds the file's own SQLite form —
/// kept only where SQLite cannot say the same thing the same way (a table rebuilt to change a
/// CHECK, a regular expression written as GLOB, triggers instead of a PL/pgSQL function).
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    source: &'static str,
    sqlite_form: Option<&'static str>,
}

impl Migration {
    pub fn postgres(&self) -> &'static str {
        self.source
    }

    pub fn sqlite(&self) -> Cow<'static, str> {
        match self.sqlite_form {
            Some(form) => Cow::Borrowed(form),
            None => Cow::Owned(ddl_to_sqlite(self.source)),
        }
    }
}

/// `migrations/NNNN_*.sql`, in order (the list is written by `build.rs`).
pub const MIGRATIONS: &[Migration] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// What one run of a migration runner did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions this run applied, in order; empty when the schema was current.
    pub applied: Vec<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_embedded_in_order() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let on_disk = std::fs::read_dir(&root)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "sql")
            })
            .count();
        assert_eq!(MIGRATIONS.len(), on_disk);
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }

    #[test]
    fn every_sqlite_form_belongs_to_a_migration() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let m = MIGRATIONS.iter().find(|m| m.name == stem);
            assert!(
                m.is_some_and(|m| m.sqlite_form.is_some()),
                "{} has no migration of its name",
                path.display()
            );
        }
    }
}
