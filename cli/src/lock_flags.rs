//! `--lock-timeout` and `--allow-insecure-permissions`: how every writing command takes the cert
//! dir's lock and reads CA keys.

use std::time::Duration;

use clap::Args;
use kubepki_pki::InitOptions;

use crate::commands::init::parse_duration;

/// The lock and CA-key flags shared by the commands that write.
#[derive(Args, Clone, Debug)]
pub(crate) struct LockFlags {
    /// How long to wait for another kubepki process holding the cert dir's lock (e.g. 30s).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, default_value = "60s", value_parser = parse_duration)]
    pub(crate) lock_timeout: Duration,
    /// Accept CA keys readable by group or others (refused by default).
    #[arg(long)]
    pub(crate) allow_insecure_permissions: bool,
}

impl LockFlags {
    /// The options of a run issuing at the current time.
    pub(crate) fn options(&self) -> InitOptions {
        InitOptions {
            lock_timeout: self.lock_timeout,
            allow_insecure_permissions: self.allow_insecure_permissions,
            ..InitOptions::now()
        }
    }
}
