//! Text every output shares, below every capability: times (the one `--at` grammar, RFC 3339
//! as every output writes it, kubectl's short durations), the one table layout (Go's
//! text/tabwriter, as kubeadm's output uses it, for kubeadm's text and every CLI table, with its
//! palette of colours), and an error with its causes on one line.

pub(crate) mod tabwriter;
mod time;

pub use self::tabwriter::{Cell, Table, Tone};
pub use self::time::{Rfc3339Utc, parse_time, rfc3339, short_human_duration};

/// `a: b: c` from an error and its sources.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

/// `value` as pretty JSON, for the record kubepki keeps in `path` (a backup manifest, a phase's
/// state, an interrupted run): an error naming `path` when it has no JSON form (a path in it
/// that is not UTF-8), so that a record is never written empty. Only the rotations keep records.
#[cfg(feature = "live")]
pub(crate) fn json_record(value: &impl serde::Serialize, path: &std::path::Path) -> crate::Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| crate::Error::Config {
        path: path.to_owned(),
        reason: format!("cannot be written: {e} (the paths kubepki records must be UTF-8)"),
    })
}
