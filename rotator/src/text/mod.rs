//! Text every output shares, below every capability: times (the one `--at` grammar, RFC 3339
//! as every output writes it, kubectl's short durations), the one table layout (Go's
//! text/tabwriter, as kubeadm's output uses it), and an error with its causes on one line.

pub(crate) mod tabwriter;
mod time;

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
