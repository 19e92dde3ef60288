//! File changes, through inotify: a thread blocked on the inotify descriptor wakes the agent's
//! loop when anything in the watched directories is written, renamed, created or removed.

use std::path::PathBuf;
use std::sync::Arc;

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use serde_json::json;
use tokio::sync::Notify;

use super::log;
use super::state::{self, Shared};

/// Watches each directory of `dirs` that exists; a change notifies `changed`.
pub(super) fn start(dirs: &[PathBuf], changed: Arc<Notify>, shared: Shared) {
    let fd = match inotify::init(CreateFlags::CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            state::watch_error(&shared, format!("inotify: {e}; changes are seen every --interval only"));
            return;
        }
    };
    let mask = WatchFlags::CLOSE_WRITE
        | WatchFlags::MOVED_TO
        | WatchFlags::MOVED_FROM
        | WatchFlags::CREATE
        | WatchFlags::DELETE
        | WatchFlags::ATTRIB
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF;
    let mut watched = Vec::new();
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        match inotify::add_watch(&fd, dir.as_path(), mask) {
            Ok(_) => watched.push(dir.display().to_string()),
            Err(e) => state::watch_error(&shared, format!("{}: {e}", dir.display())),
        }
    }
    log::event("info", "watching", json!({ "dirs": watched }));
    let spawned = std::thread::Builder::new().name("watch".into()).spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match rustix::io::read(&fd, &mut buf) {
                Ok(_) => changed.notify_one(),
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
