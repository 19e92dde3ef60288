//! File changes, through inotify: a thread blocked on the inotify descriptor wakes the agent's
//! loop when anything in the watched directories is written, renamed, created or removed.
//!
//! inotify watches an inode, not a path: a directory deleted and made again (a restore from a
//! backup, `rm -rf etcd && tar x`) is a new inode no watch is on. So each directory's parent
//! is watched for entries created or moved in, and after every wake-up every directory is
//! armed again (`inotify_add_watch` on a path already watched is a no-op, on a new inode a
//! new watch); a directory that did not exist at start is watched once it appears.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use serde_json::json;
use tokio::sync::Notify;

use super::log;
use super::state::{self, Shared};

/// Watches each directory of `dirs` (when it exists, and from its parent until it does); a
/// change notifies `changed`.
pub(super) fn start(dirs: &[PathBuf], changed: Arc<Notify>, shared: Shared) {
    let fd = match inotify::init(CreateFlags::CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            state::watch_error(&shared, format!("inotify: {e}; changes are seen every --interval only"));
            return;
        }
    };
    let dirs = dirs.to_vec();
    let mut watches = HashSet::new();
    let watched = arm(&fd, &dirs, &mut watches, &shared);
    log::event("info", "watching", json!({ "dirs": watched }));
    let spawned = std::thread::Builder::new().name("watch".into()).spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match rustix::io::read(&fd, &mut buf) {
                Ok(_) => {
                    let again = arm(&fd, &dirs, &mut watches, &shared);
                    if !again.is_empty() {
                        log::event("info", "watching again", json!({ "dirs": again }));
                    }
                    changed.notify_one();
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    state::watch_error(&shared, format!("inotify read: {e}; changes are seen every --interval only"));
                    return;
                }
            }
        }
    });
    if let Err(e) = spawned {
        log::event("error", "watch error", json!({ "error": e.to_string() }));
    }
}

/// Adds (or keeps) a watch on every directory of `dirs` that exists and on each one's parent
/// (for the directory itself appearing again); returns the directories with a new watch (a
/// new inode: the first call, or a directory made again). Every watch adds to the mask already
/// on its inode (`MASK_ADD`), so a directory that is also another's parent keeps both.
fn arm(fd: &impl rustix::fd::AsFd, dirs: &[PathBuf], watches: &mut HashSet<i32>, shared: &Shared) -> Vec<String> {
    let mask = WatchFlags::CLOSE_WRITE
        | WatchFlags::MOVED_TO
        | WatchFlags::MOVED_FROM
        | WatchFlags::CREATE
        | WatchFlags::DELETE
        | WatchFlags::ATTRIB
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF;
    let appears = WatchFlags::CREATE | WatchFlags::MOVED_TO;
    let mut watched = Vec::new();
    for dir in dirs {
        if let Some(parent) = dir.parent().filter(|p| p.is_dir()) {
            // Best effort: without it, a recreated directory is seen at the next --interval.
            let _ = inotify::add_watch(fd, parent, appears | WatchFlags::ONLYDIR | WatchFlags::MASK_ADD);
        }
        if !dir.is_dir() {
            continue;
        }
        match inotify::add_watch(fd, dir.as_path(), mask | WatchFlags::ONLYDIR | WatchFlags::MASK_ADD) {
            Ok(wd) => {
                if watches.insert(wd) {
                    watched.push(dir.display().to_string());
                }
            }
            Err(e) => state::watch_error(shared, format!("{}: {e}", dir.display())),
        }
    }
    watched
}
