//! What a path names for one participant: the virtual directories that lead to the trees it
//! may see (`/`, `/v1`, `/v1/settlements`), or a file or directory inside one of them.
//!
//! Paths are resolved lexically against the virtual root (`..` stops at `/`, relative paths
//! start at `/`), so a name can only leave a tree by naming another tree, which is then checked
//! against what the participant may see. On disk, every component below the reports root is
//! looked at without following it, and a symlink is refused: a link planted in a tree cannot
//! lead out of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ocpay_core::access::Scope;
use ocpay_core::ids::ClientId;
use ocpay_server::clock::Clock;
use ocpay_store::Store;
use russh_sftp::protocol::StatusCode;
use russh_sftp::server::StatusReply;

/// The directories between the virtual root and the participants' trees.
const PREFIX: [&str; 2] = ["v1", "settlements"];

/// Where a participant's view is taken from.
pub(crate) struct Tree {
    pub(crate) reports_root: PathBuf,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// A directory of the virtual prefix, with the names it lists.
    Virtual(Vec<String>),
    /// Something in the tree of `owner` (which may not exist on disk).
    Disk { path: PathBuf, owner: ClientId },
}

/// A path's components after `.` and `..` are taken lexically, from the root.
pub(crate) fn components(path: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts
}

/// The absolute virtual path of `components`.
pub(crate) fn display(components: &[&str]) -> String {
    format!("/{}", components.join("/"))
}

pub(crate) fn denied() -> StatusReply {
    StatusCode::PermissionDenied.with_message("permission denied: the files are read-only")
}

pub(crate) fn missing() -> StatusReply {
    StatusCode::NoSuchFile.with_message("no such file")
}

pub(crate) fn failure(error: impl std::fmt::Display) -> StatusReply {
    tracing::error!(%error, "sftp request failed");
    StatusCode::Failure.with_message("the request failed")
}

/// A client id that names exactly one path component: anything else has no tree to show.
fn plain_component(id: &ClientId) -> bool {
    let id = id.as_str();
    !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\0'])
}

impl Tree {
    /// The trees `login` may see now: its own, and those of merchants whose grant with the
    /// `reports` scope it holds and that is neither revoked nor expired. Read afresh on every
    /// call, so that a revoked grant takes effect on the next request.
    pub(crate) async fn visible(&self, login: &ClientId) -> Result<Vec<ClientId>, StatusReply> {
        let now = self.clock.now();
        let grants = self.store.grants(login).await.map_err(failure)?;
        let mut ids = vec![login.clone()];
        ids.extend(
            grants
                .into_iter()
                .filter(|grant| grant.allows(login, Scope::Reports, now).is_ok())
                .map(|grant| grant.merchant),
        );
        ids.retain(plain_component);
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids.dedup();
        Ok(ids)
    }

    /// Whether `login` may see `owner`'s tree now.
    pub(crate) async fn may_see(&self, login: &ClientId, owner: &ClientId) -> Result<bool, StatusReply> {
        if login == owner {
            return Ok(true);
        }
        Ok(self.visible(login).await?.contains(owner))
    }

    /// What `path` names for `login`. A tree it may not see answers as missing, exactly as a
    /// tree that does not exist.
    pub(crate) async fn resolve(&self, login: &ClientId, path: &str) -> Result<Node, StatusReply> {
        match locate(path) {
            Place::Missing => Err(missing()),
            Place::Prefix(name) => Ok(Node::Virtual(vec![name.to_owned()])),
            Place::Trees => {
                let ids = self.visible(login).await?;
                Ok(Node::Virtual(ids.iter().map(|id| id.as_str().to_owned()).collect()))
            }
            Place::Tree { owner, parts } => {
                if !self.may_see(login, &owner).await? {
                    return Err(missing());
                }
                let path = self.checked_path(&parts).await?;
                Ok(Node::Disk { path, owner })
            }
        }
    }

    /// The disk path of `parts` under the reports root, refusing any component that is a
    /// symlink. A missing component is left for the caller to find (a participant's tree that
    /// has no file yet is an empty directory).
    async fn checked_path(&self, parts: &[&str]) -> Result<PathBuf, StatusReply> {
        let mut path = self.reports_root.clone();
        for part in parts {
            path.push(part);
            match tokio::fs::symlink_metadata(&path).await {
                Ok(metadata) if metadata.file_type().is_symlink() => {
                    tracing::warn!(path = %path.display(), "refused a symlink in the reports tree");
                    return Err(denied());
                }
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    // Nothing below a missing component exists either.
                    return Ok(disk_path(&self.reports_root, parts));
                }
                Err(error) => return Err(failure(error)),
            }
        }
        Ok(path)
    }
}

/// Where a path leads, before the store and the disk are asked.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place<'a> {
    /// A directory of the virtual prefix (`/` or `/v1`), which lists the one name below it.
    Prefix(&'static str),
    /// `/v1/settlements`, which lists the trees the participant may see.
    Trees,
    /// Inside the tree of `owner` (whether the participant may see it is still to be asked):
    /// every component from the root, `v1`, `settlements` and the owner's id first.
    Tree { owner: ClientId, parts: Vec<&'a str> },
    /// Nothing: outside the prefix, or under an id that cannot name a tree.
    Missing,
}

/// What `path` names lexically: the pure part of [`Tree::resolve`]. Public for the fuzz
/// targets, which check that a tree's path never leaves it.
#[doc(hidden)]
pub fn locate(path: &str) -> Place<'_> {
    let parts = components(path);
    if parts.len() < PREFIX.len() {
        if parts.iter().zip(PREFIX).any(|(part, expected)| *part != expected) {
            return Place::Missing;
        }
        return Place::Prefix(PREFIX[parts.len()]);
    }
    if parts[..PREFIX.len()] != PREFIX {
        return Place::Missing;
    }
    let Some(id) = parts.get(PREFIX.len()) else {
        return Place::Trees;
    };
    match ClientId::parse(id) {
        Ok(owner) if plain_component(&owner) => Place::Tree { owner, parts },
        _ => Place::Missing,
    }
}

/// The disk path of a tree's `parts` (from [`locate`]) under the reports root.
#[doc(hidden)]
pub fn disk_path(reports_root: &Path, parts: &[&str]) -> PathBuf {
    parts.iter().fold(reports_root.to_path_buf(), |path, part| path.join(part))
}

/// Whether `path` is the root of a participant's tree (`<root>/v1/settlements/<id>`), which
/// lists as an empty directory before its first file.
pub(crate) fn is_tree_root(reports_root: &Path, path: &Path) -> bool {
    path.strip_prefix(reports_root).is_ok_and(|rest| rest.components().count() == PREFIX.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_lexically_from_the_root() {
        assert_eq!(components("/v1/settlements/C1"), vec!["v1", "settlements", "C1"]);
        assert_eq!(components("v1/./settlements//C1/"), vec!["v1", "settlements", "C1"]);
        assert_eq!(components("/v1/settlements/C1/../../../../../etc/passwd"), vec!["etc", "passwd"]);
        assert_eq!(components("../../C2/x.csv"), vec!["C2", "x.csv"]);
        assert_eq!(components("/v1/settlements/C1/../C2"), vec!["v1", "settlements", "C2"]);
        assert!(components("/..").is_empty());
        assert_eq!(display(&components("a/../b")), "/b");
    }
}
