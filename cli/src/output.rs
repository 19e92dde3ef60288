//! Rendering helpers shared by the commands.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use kubepki_rotator::text::Table;
use time::OffsetDateTime;

/// `-o` for commands that print a report.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, ValueEnum)]
pub(crate) enum Format {
    /// A human-readable table.
    #[default]
    Table,
    /// JSON (a documented, stable schema).
    Json,
}

/// Whether to colour what goes to stdout, the one decision for every command: stdout is a
/// terminal and `NO_COLOR` is unset or empty (<https://no-color.org>). The colours are
/// [`kubepki_rotator::text::Tone`]'s.
pub(crate) fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// RFC 3339 in UTC, second precision: `2026-11-27T10:00:00Z`.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    kubepki_rotator::text::rfc3339(t)
}

/// `2026-11-27 10:00 UTC`.
pub(crate) fn short_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// A count and its noun, singular for one: `1 certificate`, `2 certificates`, `0 files`. Every
/// count a command prints goes through it.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Prints a JSON value, pretty, with a trailing newline.
pub(crate) fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    // Rendered first, so that a closed pipe surfaces as the io::Error the exit code looks for
    // (serde_json's own error hides it).
    let text = serde_json::to_string_pretty(value)?;
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// A table as every kubepki table is laid out: Go tabwriter columns three spaces apart, no line
/// ending in spaces (a row's empty last cells leave nothing behind).
pub(crate) fn new_table() -> Table {
    Table::new(0, 3).trim_trailing_spaces()
}

/// Lays out rows of plain cells as [`new_table`] does.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let mut table = new_table();
    for row in rows {
        table.row(row);
    }
    table.render()
}

/// A word for a shell command line: as is when only safe characters, else single-quoted.
pub(crate) fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// ` --flag VALUE` for each flag the user gave, for a hint that must be a complete command.
pub(crate) fn flags_given(flags: &[(&str, Option<&std::path::Path>)]) -> String {
    flags
        .iter()
        .filter_map(|(flag, value)| value.map(|v| format!(" {flag} {}", shell_word(&v.to_string_lossy()))))
        .collect()
}

/// `text` with `flags` appended to the `kubepki …` command in it (which ends the text or a
/// parenthesis): a hint made by the library, completed with the flags of this run.
pub(crate) fn complete_command(text: &str, flags: &str) -> String {
    let Some(start) = text.find("kubepki ") else { return text.to_owned() };
    let end = text[start..].find(')').map_or(text.len(), |e| start + e);
    format!("{}{flags}{}", &text[..end], &text[end..])
}

/// The restart list after the results of a command that wrote PKI files, each line prefixed
/// with `[tag] ` (the list itself is `kubepki_rotator::rotation::restart`'s, one for every command).
pub(crate) fn print_restart(tag: &str, list: &kubepki_rotator::rotation::restart::RestartList) {
    let lines = list.lines();
    if lines.is_empty() {
        println!("[{tag}] no component of this node reads the changed files: nothing to restart");
    }
    for line in lines {
        println!("[{tag}] {line}");
    }
}
