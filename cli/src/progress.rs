//! Progress on the terminal for slow work, one mechanism for every command: key generation
//! (`init`, `issue`, `rotate`, `rotate-ca`) and waits (the cert dir's lock, the etcd lock, an
//! endpoint verification waits for), reported by the library through
//! [`kubepki_pki::progress`], drawn on stderr with indicatif as "what, n of m" and "waiting for
//! what (n s of m s)". Drawn only when
//! stdout and stderr are both terminals and the output is a table (never with `-o json`/`yaml`,
//! never into a pipe or a file), and only once the work has taken half a second; no colour, so
//! NO_COLOR holds.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kubepki_pki::KeyAlgorithm;

/// Work faster than this shows nothing.
const AFTER: Duration = Duration::from_millis(500);

/// Installs the progress display for this process if `table` output goes to a terminal (and
/// stderr is one too); otherwise nothing is ever drawn.
pub(crate) fn install(table: bool) {
    if table && std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(style("{spinner} {msg}: {pos} made ({elapsed})"));
        bar.set_message("generating keys");
        kubepki_pki::progress::set_observer(Box::new(Keys { bar, started: Mutex::new(Instant::now()) }));
    }
}

/// The count of keys to make before `what` (`rotate`, `rotate-ca`) makes them, when the library
/// does not say it itself.
pub(crate) fn keys_planned(what: &str, count: usize, algorithm: KeyAlgorithm) {
    kubepki_pki::progress::keys_planned(what, count, algorithm);
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("invariant: the templates here are valid (a test draws each)")
}

struct Keys {
    bar: ProgressBar,
    started: Mutex<Instant>,
}

impl Keys {
    fn started(&self) -> Instant {
        *self.started.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl kubepki_pki::progress::Observer for Keys {
    fn keys_planned(&self, what: &str, count: usize, algorithm: KeyAlgorithm) {
        self.bar.reset();
        self.bar.set_length(count as u64);
        self.bar.set_style(style("{msg} {pos}/{len} [{bar:30}] {elapsed}").progress_chars("#>-"));
        self.bar.set_message(format!("{what}: generating {algorithm} keys"));
        *self.started.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    fn waiting(&self, what: &str, waited: Duration, limit: Duration) {
        if waited < AFTER {
            return;
        }
        if self.bar.is_hidden() {
            self.bar.set_style(style("{spinner} {msg}"));
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar.enable_steady_tick(Duration::from_millis(200));
        }
        self.bar.set_message(waiting_message(what, waited, limit));
    }

    fn wait_over(&self) {
        if !self.bar.is_hidden() {
            self.bar.finish_and_clear();
            self.bar.set_draw_target(ProgressDrawTarget::hidden());
        }
    }

    fn key_made(&self, _algorithm: KeyAlgorithm) {
        self.bar.inc(1);
        if self.bar.is_hidden() && self.started().elapsed() >= AFTER {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar.enable_steady_tick(Duration::from_millis(200));
        }
        if self.bar.length().is_some_and(|len| self.bar.position() >= len) {
            self.bar.finish_and_clear();
            self.bar.set_draw_target(ProgressDrawTarget::hidden());
        }
    }
}

/// `waiting for WHAT (12 s of 60 s)`.
fn waiting_message(what: &str, waited: Duration, limit: Duration) -> String {
    format!("waiting for {what} ({} s of {} s)", waited.as_secs(), limit.as_secs())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn a_wait_says_what_and_how_long_of_how_long() {
        let m =
            super::waiting_message("https://10.0.0.11:6443", Duration::from_millis(12_400), Duration::from_secs(60));
        assert_eq!(m, "waiting for https://10.0.0.11:6443 (12 s of 60 s)");
    }

    #[test]
    fn the_templates_are_valid() {
        for t in
            ["{spinner} {msg}: {pos} made ({elapsed})", "{msg} {pos}/{len} [{bar:30}] {elapsed}", "{spinner} {msg}"]
        {
            assert!(indicatif::ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }
}
