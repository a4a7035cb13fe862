//! `ocpay backup` and `ocpay restore`: one archive of an SQLite platform's data directory,
//! taken while it serves, and a new data directory made from one.
//!
//! The archive is a tar file. Its first entry, `ocpay-backup.json`, says what it holds; then
//! come the SQLite files, copied through SQLite's online backup API as of one moment (see
//! `ocpay_store::sqlite::backup`), and every other file of the data directory as it is: the
//! platform keys and which one signs, the admin token, the SFTP host key, the reconciliation
//! reports. It is written under a temporary name, synced and renamed, with mode 0600: it holds
//! the platform's private keys.
//!
//! A restore writes into an empty or absent directory only, through a directory of its own
//! beside it that is renamed into place once every file is there and every database passed
//! SQLite's integrity check: a restore that fails leaves nothing behind.

use std::fs;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use ocpay_store::sqlite::SqliteSettings;
use ocpay_store::sqlite::backup::{database_files, integrity_check, snapshot};
use serde_json::json;

use crate::data::DataArgs;

/// The archive's first entry: what it holds.
const MANIFEST: &str = "ocpay-backup.json";
/// The manifest's `format`: what `ocpay restore` knows how to read.
const FORMAT: &str = "ocpay-backup-1";

#[derive(clap::Args)]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The archive to write (a tar file, mode 0600); an existing file is not overwritten.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct RestoreArgs {
    /// The archive `ocpay backup` wrote.
    #[arg(long)]
    from: PathBuf,
    /// The data directory to make: it must be empty or absent.
    #[arg(long, env = "OCPAY_DATA_DIR")]
    data_dir: PathBuf,
}

/// A directory of our own that is removed again unless it was kept.
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    /// Makes `path` (mode 0700); it must not exist.
    fn create(path: PathBuf) -> anyhow::Result<Scratch> {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("create {}", path.display()))?;
        Ok(Scratch { path, keep: false })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A bar of `unit` on stderr when it is a terminal; hidden otherwise, so that logs stay quiet.
fn progress_bar(message: &'static str) -> anyhow::Result<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("{msg} [{bar:30}] {percent}% {pos}/{len} ({eta})")?);
    bar.set_message(message);
    Ok(bar)
}

/// A sibling of `path` named after it, for files and directories on the way to it.
fn sibling(path: &Path, what: &str) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?
        .to_string_lossy();
    Ok(path.with_file_name(format!(".{name}.{}.{what}", std::process::id())))
}

/// The directory a path is in, for syncing after a rename.
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn sync_directory(path: &Path) -> anyhow::Result<()> {
    fs::File::open(path)
        .and_then(|directory| directory.sync_all())
        .with_context(|| format!("sync {}", path.display()))
}

/// Whether a file of the data directory is left out of the archive: the SQLite files (copied
/// through the backup API instead), their logs, and files on their way to being written.
fn left_out(name: &str, databases: &[String]) -> bool {
    databases.iter().any(|database| {
        name == database
            || ["-wal", "-shm", "-journal"].iter().any(|suffix| name == format!("{database}{suffix}"))
    }) || name.ends_with(".tmp")
}

/// Every regular file under `root`, as paths relative to it, in a stable order.
fn files_under(root: &Path, relative: &Path, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let directory = root.join(relative);
    let mut entries = fs::read_dir(&directory)
        .with_context(|| format!("read {}", directory.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("read {}", directory.display()))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = relative.join(entry.file_name());
        let kind = entry.file_type().with_context(|| format!("read {}", root.join(&path).display()))?;
        if kind.is_dir() {
            files_under(root, &path, found)?;
        } else if kind.is_file() {
            found.push(path);
        } else {
            tracing::warn!(path = %root.join(&path).display(), "not a regular file: left out of the backup");
        }
    }
    Ok(())
}

/// A tar header of a regular file.
fn header(size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(mode & 0o777);
    header.set_mtime(mtime);
    header
}

/// `ocpay backup`.
pub(crate) fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let config = args.data.config()?;
    if config.database_url.is_some() {
        anyhow::bail!(
            "ocpay backup copies a platform whose data is in SQLite files; this one keeps its data in \
             PostgreSQL (database_url): back it up with pg_dump, or with base backups and WAL archiving \
             for point-in-time recovery, as the README shows under \"Operating in production\", \
             \"Backups\" (and copy the data directory's keys with it)"
        );
    }
    let data_dir = args.data.data_dir(&config)?;
    let root = data_dir.root().to_owned();
    let out = args.out;
    if out.exists() {
        anyhow::bail!("{} exists: name a new file with --out (a backup never overwrites one)", out.display());
    }
    let settings = SqliteSettings {
        busy_timeout: std::time::Duration::from_millis(config.sqlite_busy_timeout_ms),
        ..SqliteSettings::new(data_dir.database_path())
    };
    let databases: Vec<String> = database_files(&settings)
        .iter()
        .filter_map(|path| path.file_name().map(|name| name.to_string_lossy().into_owned()))
        .collect();

    let started = jiff::Timestamp::now();
    let bar = progress_bar("copying the databases")?;
    let scratch = Scratch::create(sibling(&out, "databases")?)?;
    let copies = snapshot(&settings, &scratch.path, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .context("copy the SQLite databases")?;
    bar.finish_and_clear();

    let mut others = Vec::new();
    files_under(&root, Path::new(""), &mut others)?;
    others.retain(|path| !left_out(&path.to_string_lossy(), &databases));

    let temporary = sibling(&out, "tmp")?;
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("create {}", temporary.display()))?;
    let written = (|| -> anyhow::Result<u64> {
        let mut archive = tar::Builder::new(std::io::BufWriter::new(file));
        let names: Vec<String> = others.iter().map(|path| path.to_string_lossy().into_owned()).collect();
        let manifest = serde_json::to_vec_pretty(&json!({
            "format": FORMAT,
            "createdAt": started.to_string(),
            "ocpayVersion": env!("CARGO_PKG_VERSION"),
            "databases": copies.iter().map(|copy| json!({ "name": copy.name, "pages": copy.pages })).collect::<Vec<_>>(),
            "files": names,
        }))?;
        let now = started.as_second().unsigned_abs();
        archive.append_data(&mut header(manifest.len() as u64, 0o600, now), MANIFEST, manifest.as_slice())?;
        for copy in &copies {
            let file = fs::File::open(&copy.copy).with_context(|| format!("read {}", copy.copy.display()))?;
            let size = file.metadata()?.len();
            archive.append_data(&mut header(size, 0o600, now), &copy.name, file)?;
        }
        for (path, name) in others.iter().zip(&names) {
            let source = root.join(path);
            // Read whole, so that a file written meanwhile goes in as one version of it.
            let contents = match fs::read(&source) {
                Ok(contents) => contents,
                // Removed since the directory was listed (a key retired, a report replaced).
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error).with_context(|| format!("read {}", source.display())),
            };
            let metadata = fs::metadata(&source).with_context(|| format!("read {}", source.display()))?;
            let mtime = metadata.mtime().max(0).unsigned_abs();
            archive.append_data(
                &mut header(contents.len() as u64, metadata.mode(), mtime),
                name,
                contents.as_slice(),
            )?;
        }
        let file = archive.into_inner()?.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        file.sync_all()?;
        Ok(file.metadata()?.len())
    })();
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(error) => {
            let _ = fs::remove_file(&temporary);
            return Err(error.context(format!("write {}", temporary.display())));
        }
    };
    fs::rename(&temporary, &out)
        .with_context(|| format!("rename {} to {}", temporary.display(), out.display()))?;
    sync_directory(&parent_of(&out))?;
    crate::print_json(&json!({
        "backup": std::path::absolute(&out).unwrap_or(out),
        "dataDir": std::path::absolute(&root).unwrap_or(root),
        "createdAt": started.to_string(),
        "databases": copies.iter().map(|copy| json!({ "name": copy.name, "pages": copy.pages })).collect::<Vec<_>>(),
        "files": others,
        "bytes": bytes,
    }))
}

/// A path inside the archive that stays inside the directory it is restored into: plain names
/// only, no `..`, no root.
fn safe_path(path: &Path) -> Option<&Path> {
    let plain = path.components().all(|component| matches!(component, Component::Normal(_)));
    (plain && path.components().next().is_some()).then_some(path)
}

/// `ocpay restore`.
pub(crate) fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let target = args.data_dir;
    match fs::read_dir(&target) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                anyhow::bail!(
                    "the data directory {} is not empty: restore into an empty or absent directory, so that \
                     nothing in it is overwritten or mixed with the backup",
                    target.display()
                );
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("read {}", target.display())),
    }
    let archive_file = fs::File::open(&args.from).with_context(|| format!("open {}", args.from.display()))?;
    let mut scratch = Scratch::create(sibling(&target, "restoring")?)?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(archive_file));
    let mut manifest: Option<serde_json::Value> = None;
    let mut restored = Vec::new();
    let bar = progress_bar("restoring")?;
    bar.set_length(fs::metadata(&args.from)?.len());
    let not_a_backup = || format!("{} is not an archive of `ocpay backup`", args.from.display());
    for entry in archive.entries().with_context(not_a_backup)? {
        let mut entry = entry.with_context(not_a_backup)?;
        let path = entry.path().with_context(not_a_backup)?.into_owned();
        if manifest.is_none() {
            anyhow::ensure!(
                path == Path::new(MANIFEST),
                "{}: it does not start with {MANIFEST}",
                not_a_backup()
            );
            let mut text = Vec::new();
            entry.read_to_end(&mut text).with_context(not_a_backup)?;
            let read: serde_json::Value = serde_json::from_slice(&text).with_context(not_a_backup)?;
            anyhow::ensure!(
                read["format"] == FORMAT,
                "{} is a backup of format {}, which this ocpay does not know ({FORMAT})",
                args.from.display(),
                read["format"]
            );
            manifest = Some(read);
            continue;
        }
        anyhow::ensure!(
            entry.header().entry_type() == tar::EntryType::Regular,
            "{}: {} is not a regular file",
            not_a_backup(),
            path.display()
        );
        let relative = safe_path(&path).with_context(|| {
            format!("{}: {} points outside the directory", not_a_backup(), path.display())
        })?;
        let destination = scratch.path.join(relative);
        if let Some(parent) = destination.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        let mode = entry.header().mode().unwrap_or(0o600) & 0o777;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&destination)
            .with_context(|| format!("create {}", destination.display()))?;
        std::io::copy(&mut entry, &mut file).with_context(|| format!("write {}", destination.display()))?;
        file.flush()?;
        file.sync_all().with_context(|| format!("write {}", destination.display()))?;
        bar.set_position(entry.raw_file_position() + entry.size());
        restored.push(relative.to_owned());
    }
    bar.finish_and_clear();
    let manifest = manifest.with_context(|| format!("{} is empty", args.from.display()))?;
    let listed = |key: &str, field: Option<&str>| -> Vec<String> {
        manifest[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| field.map_or(item, |field| &item[field]).as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let databases = listed("databases", Some("name"));
    anyhow::ensure!(!databases.is_empty(), "{}: it names no database", not_a_backup());
    for name in databases.iter().chain(&listed("files", None)) {
        anyhow::ensure!(
            restored.iter().any(|path| path == Path::new(name)),
            "{} is incomplete: {name} is missing",
            args.from.display()
        );
    }
    for name in &databases {
        integrity_check(&scratch.path.join(name))
            .with_context(|| format!("{}: the database {name} is damaged", args.from.display()))?;
    }
    for directory in restored.iter().filter_map(|path| path.parent()).chain([Path::new("")]) {
        sync_directory(&scratch.path.join(directory))?;
    }
    // Into place at once: rename replaces an empty directory.
    fs::rename(&scratch.path, &target).with_context(|| {
        format!("move the restored files from {} to {}", scratch.path.display(), target.display())
    })?;
    scratch.keep = true;
    sync_directory(&parent_of(&target))?;
    crate::print_json(&json!({
        "restored": std::path::absolute(&target).unwrap_or(target),
        "from": std::path::absolute(&args.from).unwrap_or(args.from),
        "createdAt": manifest["createdAt"],
        "databases": databases,
        "files": restored,
    }))
}
