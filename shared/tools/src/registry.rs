//! The tools one user can call: the built-ins, then the user's own (MCP servers' tools join
//! here). Names are unique across them: registration refuses a built-in's name, and a stored
//! tool that shadows one anyway is left out.

use crate::builtin;
use crate::executor::ModuleRef;
use crate::manifest::Manifest;

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manifest: Manifest,
    pub module: ModuleRef,
    /// The hosts a call may fetch from are the user's allowed hosts, not the manifest's.
    pub hosts_from_user: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// The built-ins and `user_tools`, in that order.
    pub fn with_user_tools(user_tools: impl IntoIterator<Item = (Manifest, String)>) -> Self {
        let mut entries: Vec<Entry> = builtin::all()
            .iter()
            .map(|b| Entry {
                manifest: b.manifest.clone(),
                module: ModuleRef::Builtin(b.manifest.name.to_string()),
                hosts_from_user: b.hosts_from_user,
            })
            .collect();
        for (manifest, sha256) in user_tools {
            if entries.iter().any(|e| e.manifest.name == manifest.name) {
                tracing::warn!(tool = %manifest.name, "a stored tool shadows another of that name; left out");
                continue;
            }
            entries.push(Entry {
                manifest,
                module: ModuleRef::Sha256(sha256),
                hosts_from_user: false,
            });
        }
        Self { entries }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.manifest.name.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ceilings;
    use serde_json::json;

    fn manifest(name: &str) -> Manifest {
        let wire = json!({"name": name, "description": "d", "parameters": {"type": "object"}, "risk": "write"});
        Manifest::parse(wire, &Ceilings::default()).unwrap()
    }

    #[test]
    fn builtins_come_first_and_cannot_be_shadowed() {
        let registry = Registry::with_user_tools([
            (manifest("weather"), "a".repeat(64)),
            (manifest("calculator"), "b".repeat(64)),
        ]);
        assert_eq!(registry.entries().len(), builtin::all().len() + 1);
        assert_eq!(
            registry.find("calculator").unwrap().module,
            ModuleRef::Builtin("calculator".into())
        );
        assert_eq!(
            registry.find("weather").unwrap().module,
            ModuleRef::Sha256("a".repeat(64))
        );
        assert!(registry.find("http_fetch").unwrap().hosts_from_user);
        assert!(registry.find("nothing").is_none());
    }
}
