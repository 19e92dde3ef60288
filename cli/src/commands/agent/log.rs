//! The agent's log: one JSON object per line on standard error,
//! `{"time": RFC 3339, "level", "event", ...fields}`. Never key material.

use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Writes one event; `fields` (an object) follow `time`, `level` and `event`.
pub(super) fn event(level: &str, event: &str, fields: Value) {
    let mut line = Map::new();
    line.insert("time".into(), Value::String(kubepki_rotator::text::rfc3339(OffsetDateTime::now_utc())));
    line.insert("level".into(), Value::String(level.into()));
    line.insert("event".into(), Value::String(event.into()));
    if let Value::Object(fields) = fields {
        line.extend(fields);
    }
    eprintln!("{}", Value::Object(line));
}
