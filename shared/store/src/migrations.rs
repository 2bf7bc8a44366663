//! The schema files, embedded so every binary carries the schema it was built for.

/// One numbered schema file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal, $path:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../migrations/",
                $path
            )),
        }
    };
}

/// `migrations/NNNN_*.sql`, in order.
pub const POSTGRES: &[Migration] = &[
    migration!(1, "0001_init", "0001_init.sql"),
    migration!(
        2,
        "0002_provider_summary_model",
        "0002_provider_summary_model.sql"
    ),
    migration!(
        3,
        "0003_messages_unfinished",
        "0003_messages_unfinished.sql"
    ),
    migration!(4, "0004_turn_leases", "0004_turn_leases.sql"),
    migration!(5, "0005_fetch_hosts", "0005_fetch_hosts.sql"),
    migration!(6, "0006_tool_loop", "0006_tool_loop.sql"),
    migration!(7, "0007_mcp_servers", "0007_mcp_servers.sql"),
    migration!(8, "0008_open_turns", "0008_open_turns.sql"),
    migration!(9, "0009_audit_append_only", "0009_audit_append_only.sql"),
];

/// `migrations/sqlite/NNNN_*.sql`: the same versions with the same meaning.
pub const SQLITE: &[Migration] = &[
    migration!(1, "0001_init", "sqlite/0001_init.sql"),
    migration!(
        2,
        "0002_provider_summary_model",
        "sqlite/0002_provider_summary_model.sql"
    ),
    migration!(
        3,
        "0003_messages_unfinished",
        "sqlite/0003_messages_unfinished.sql"
    ),
    migration!(4, "0004_turn_leases", "sqlite/0004_turn_leases.sql"),
    migration!(5, "0005_fetch_hosts", "sqlite/0005_fetch_hosts.sql"),
    migration!(6, "0006_tool_loop", "sqlite/0006_tool_loop.sql"),
    migration!(7, "0007_mcp_servers", "sqlite/0007_mcp_servers.sql"),
    migration!(8, "0008_open_turns", "sqlite/0008_open_turns.sql"),
    migration!(
        9,
        "0009_audit_append_only",
        "sqlite/0009_audit_append_only.sql"
    ),
];

/// What one run of a migration runner did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions this run applied, in order; empty when the schema was current.
    pub applied: Vec<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_file_on_disk_is_embedded_in_order() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let pg: Vec<String> = POSTGRES.iter().map(|m| m.name.to_owned()).collect();
        let lite: Vec<String> = SQLITE.iter().map(|m| m.name.to_owned()).collect();
        assert_eq!(files_in(&root), pg);
        assert_eq!(files_in(&root.join("sqlite")), lite);
        for (i, m) in POSTGRES.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }
}
