//! The SFTP requests of one logged-in participant: listing and reading within the trees it
//! may see, and permission denied for everything that would change a file.
//!
//! Every request resolves its path again ([`Tree::resolve`]), and every read of an open file of
//! another participant's tree checks again that the grant still holds, so a revoked grant stops
//! a transfer midway. Opening a file for reading is audited.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt as _;
use std::sync::Arc;

use ocpay_core::ids::ClientId;
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::server::Shared;
use crate::tree::{Node, components, denied, display, failure, is_tree_root, missing};

/// Open handles of one session at most: each file holds a descriptor.
const HANDLES_MAX: usize = 64;
/// The most one read returns (OpenSSH asks for 32 KiB or 256 KiB).
const READ_MAX: u32 = 256 * 1024;
/// Directory entries per `readdir` answer, so that one answer stays well within a packet.
const ENTRIES_PER_ANSWER: usize = 128;

enum Open {
    Dir { owner: Option<ClientId>, entries: Vec<File>, next: usize },
    File { owner: ClientId, file: tokio::fs::File },
}

/// One SFTP session.
pub(crate) struct Files {
    shared: Arc<Shared>,
    login: ClientId,
    handles: HashMap<String, Open>,
    next_handle: u64,
}

/// Attributes as a participant sees them: no owner, no write bits.
fn read_only(metadata: &std::fs::Metadata) -> FileAttributes {
    let mut attrs = FileAttributes::from(metadata);
    attrs.uid = Some(0);
    attrs.gid = Some(0);
    attrs.permissions = attrs.permissions.map(|mode| mode & !0o222);
    attrs
}

fn virtual_dir() -> FileAttributes {
    let mut attrs = FileAttributes {
        permissions: Some(0o555),
        size: Some(0),
        uid: Some(0),
        gid: Some(0),
        ..Default::default()
    };
    attrs.set_dir(true);
    attrs
}

fn ok(id: u32) -> Status {
    Status { id, status_code: StatusCode::Ok, error_message: "Ok".into(), language_tag: "en-US".into() }
}

impl Files {
    pub(crate) fn new(shared: Arc<Shared>, login: ClientId) -> Files {
        Files { shared, login, handles: HashMap::new(), next_handle: 0 }
    }

    fn add_handle(&mut self, open: Open) -> Result<String, StatusReply> {
        if self.handles.len() >= HANDLES_MAX {
            return Err(StatusCode::Failure.with_message("too many open handles"));
        }
        self.next_handle += 1;
        let handle = self.next_handle.to_string();
        self.handles.insert(handle.clone(), open);
        Ok(handle)
    }

    async fn resolve(&self, path: &str) -> Result<Node, StatusReply> {
        self.shared.tree.resolve(&self.login, path).await
    }

    async fn attributes(&self, path: &str) -> Result<FileAttributes, StatusReply> {
        match self.resolve(path).await? {
            Node::Virtual(_) => Ok(virtual_dir()),
            Node::Disk { path, .. } => match tokio::fs::symlink_metadata(&path).await {
                Ok(metadata) if metadata.is_file() || metadata.is_dir() => Ok(read_only(&metadata)),
                Ok(_) => Err(missing()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    if is_tree_root(&self.shared.tree.reports_root, &path) {
                        Ok(virtual_dir())
                    } else {
                        Err(missing())
                    }
                }
                Err(error) => Err(failure(error)),
            },
        }
    }

    async fn audit_read(
        &self,
        path: &str,
        owner: &ClientId,
        result: Result<(), &str>,
    ) -> Result<(), StatusReply> {
        let (status, code) = match result {
            Ok(()) => ("S", "SUCCESS"),
            Err(code) => ("F", code),
        };
        self.shared
            .audit(&self.login, owner, crate::AUDIT_READ, path.to_owned(), status, code)
            .await
            .map_err(failure)
    }
}

impl russh_sftp::server::Handler for Files {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.into()
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        // Version 3 and no extensions: no posix-rename, hardlink or statvfs to refuse later.
        Ok(Version::new())
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        Ok(Name { id, files: vec![File::dummy(display(&components(&path)))] })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        Ok(Attrs { id, attrs: self.attributes(&path).await? })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        Ok(Attrs { id, attrs: self.attributes(&path).await? })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        match self.handles.get(&handle) {
            Some(Open::File { file, .. }) => {
                let metadata = file.metadata().await.map_err(failure)?;
                Ok(Attrs { id, attrs: read_only(&metadata) })
            }
            Some(Open::Dir { .. }) => Ok(Attrs { id, attrs: virtual_dir() }),
            None => Err(StatusCode::Failure.with_message("no such handle")),
        }
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let open = match self.resolve(&path).await? {
            Node::Virtual(names) => Open::Dir {
                owner: None,
                entries: names.into_iter().map(|name| File::new(name, virtual_dir())).collect(),
                next: 0,
            },
            Node::Disk { path, owner } => {
                let mut entries = Vec::new();
                match tokio::fs::read_dir(&path).await {
                    Ok(mut dir) => {
                        while let Some(entry) = dir.next_entry().await.map_err(failure)? {
                            // Symlinks and anything but files and directories are not shown.
                            let Ok(metadata) = entry.metadata().await else { continue };
                            if !(metadata.is_file() || metadata.is_dir()) {
                                continue;
                            }
                            if let Some(name) = entry.file_name().to_str() {
                                entries.push(File::new(name, read_only(&metadata)));
                            }
                        }
                    }
                    Err(error)
                        if error.kind() == std::io::ErrorKind::NotFound
                            && is_tree_root(&self.shared.tree.reports_root, &path) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
                    Err(error) if error.kind() == std::io::ErrorKind::NotADirectory => {
                        return Err(StatusCode::Failure.with_message("not a directory"));
                    }
                    Err(error) => return Err(failure(error)),
                }
                entries.sort_by(|a, b| a.filename.cmp(&b.filename));
                Open::Dir { owner: Some(owner), entries, next: 0 }
            }
        };
        Ok(Handle { id, handle: self.add_handle(open)? })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        let owner = match self.handles.get(&handle) {
            Some(Open::Dir { owner, .. }) => owner.clone(),
            _ => return Err(StatusCode::Failure.with_message("no such directory handle")),
        };
        if let Some(owner) = owner
            && !self.shared.tree.may_see(&self.login, &owner).await?
        {
            self.handles.remove(&handle);
            return Err(missing());
        }
        let Some(Open::Dir { entries, next, .. }) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure.with_message("no such directory handle"));
        };
        if *next >= entries.len() {
            return Err(StatusCode::Eof.into());
        }
        let end = (*next + ENTRIES_PER_ANSWER).min(entries.len());
        let files = entries[*next..end].to_vec();
        *next = end;
        Ok(Name { id, files })
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let virtual_path = display(&components(&filename));
        let changes = OpenFlags::WRITE
            | OpenFlags::APPEND
            | OpenFlags::CREATE
            | OpenFlags::TRUNCATE
            | OpenFlags::EXCLUDE;
        if pflags.intersects(changes) {
            return Err(denied());
        }
        let (path, owner) = match self.resolve(&filename).await {
            Ok(Node::Disk { path, owner }) => (path, owner),
            Ok(Node::Virtual(_)) => return Err(StatusCode::Failure.with_message("a directory")),
            Err(refusal) => {
                // A refusal inside the participant's own tree is worth a line of audit; one
                // elsewhere names nobody's file.
                if refusal.status_code != StatusCode::NoSuchFile {
                    self.audit_read(&virtual_path, &self.login.clone(), Err("PERMISSION_DENIED")).await?;
                }
                return Err(refusal);
            }
        };
        let before = match tokio::fs::symlink_metadata(&path).await {
            Ok(metadata) if metadata.is_file() => metadata,
            Ok(_) => return Err(StatusCode::Failure.with_message("not a regular file")),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                self.audit_read(&virtual_path, &owner, Err("NO_SUCH_FILE")).await?;
                return Err(missing());
            }
            Err(error) => return Err(failure(error)),
        };
        let file = tokio::fs::File::open(&path).await.map_err(failure)?;
        // The file opened must be the one looked at: a symlink swapped in between would be
        // followed by open, and shows here as another inode.
        let opened = file.metadata().await.map_err(failure)?;
        if (opened.dev(), opened.ino()) != (before.dev(), before.ino()) {
            tracing::warn!(path = %path.display(), "the file changed while it was opened; refused");
            return Err(denied());
        }
        self.audit_read(&virtual_path, &owner, Ok(())).await?;
        Ok(Handle { id, handle: self.add_handle(Open::File { owner, file })? })
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Result<Data, Self::Error> {
        let owner = match self.handles.get(&handle) {
            Some(Open::File { owner, .. }) => owner.clone(),
            _ => return Err(StatusCode::Failure.with_message("no such file handle")),
        };
        if owner != self.login && !self.shared.tree.may_see(&self.login, &owner).await? {
            self.handles.remove(&handle);
            return Err(denied());
        }
        let Some(Open::File { file, .. }) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure.with_message("no such file handle"));
        };
        file.seek(SeekFrom::Start(offset)).await.map_err(failure)?;
        let wanted = len.min(READ_MAX) as usize;
        let mut data = vec![0u8; wanted];
        let mut filled = 0;
        while filled < wanted {
            let read = file.read(&mut data[filled..]).await.map_err(failure)?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        if filled == 0 {
            return Err(StatusCode::Eof.into());
        }
        data.truncate(filled);
        Ok(Data { id, data })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        self.handles.remove(&handle);
        Ok(ok(id))
    }

    async fn write(
        &mut self,
        _id: u32,
        _handle: String,
        _offset: u64,
        _data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        Err(denied())
    }

    async fn setstat(
        &mut self,
        _id: u32,
        _path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        Err(denied())
    }

    async fn fsetstat(
        &mut self,
        _id: u32,
        _handle: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        Err(denied())
    }

    async fn remove(&mut self, _id: u32, _filename: String) -> Result<Status, Self::Error> {
        Err(denied())
    }

    async fn mkdir(
        &mut self,
        _id: u32,
        _path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        Err(denied())
    }

    async fn rmdir(&mut self, _id: u32, _path: String) -> Result<Status, Self::Error> {
        Err(denied())
    }

    async fn rename(&mut self, _id: u32, _oldpath: String, _newpath: String) -> Result<Status, Self::Error> {
        Err(denied())
    }

    async fn symlink(
        &mut self,
        _id: u32,
        _linkpath: String,
        _targetpath: String,
    ) -> Result<Status, Self::Error> {
        Err(denied())
    }

    async fn readlink(&mut self, _id: u32, _path: String) -> Result<Name, Self::Error> {
        Err(denied())
    }
}
