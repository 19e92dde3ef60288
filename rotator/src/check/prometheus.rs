//! `-o prometheus`: the text exposition format, for node-exporter's textfile collector
//! (write it to `<dir>/kubepki.prom.$$` and rename it to `kubepki.prom`).
//!
//! ```text
//! # HELP kubepki_certificate_expiration_timestamp_seconds NotAfter of the certificate, as a Unix timestamp.
//! # TYPE kubepki_certificate_expiration_timestamp_seconds gauge
//! kubepki_certificate_expiration_timestamp_seconds{name="apiserver",source="cert-dir",path="/etc/kubernetes/pki/apiserver.crt",subject="CN=kube-apiserver",issuer="CN=kubernetes",serial="1f2e"} 1798761600
//! ```

use std::fmt::Write as _;

use crate::check::{Evaluation, ExpiryStatus};

/// Escapes a label value: backslash, double quote and line feed.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The metrics of a report: NotAfter and NotBefore of every readable certificate, a series
/// for every missing certificate, the number of inputs that could not be read, the number of
/// certificates per status, and the evaluation time.
pub fn render(report: &Evaluation<'_>) -> String {
    let mut out = String::new();
    let certs: Vec<_> = report.entries.iter().filter_map(|e| e.item.cert().map(|c| (e, c))).collect();
    let labels = |e: &crate::check::Judged<'_>, c: &kubepki_pki::Certificate| {
        format!(
            "name=\"{}\",source=\"{}\",path=\"{}\",subject=\"{}\",issuer=\"{}\",serial=\"{}\"",
            escape_label_value(&e.item.name),
            e.item.source().as_str(),
            escape_label_value(&e.item.location.reference()),
            escape_label_value(&c.subject_string),
            escape_label_value(&c.issuer_string),
            escape_label_value(&c.serial),
        )
    };
    let family = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
    };
    family(
        &mut out,
        "kubepki_certificate_expiration_timestamp_seconds",
        "NotAfter of the certificate, as a Unix timestamp.",
    );
    for (e, c) in &certs {
        let _ = writeln!(
            out,
            "kubepki_certificate_expiration_timestamp_seconds{{{}}} {}",
            labels(e, c),
            c.not_after.unix_timestamp()
        );
    }
    family(
        &mut out,
        "kubepki_certificate_not_before_timestamp_seconds",
        "NotBefore of the certificate, as a Unix timestamp.",
    );
    for (e, c) in &certs {
        let _ = writeln!(
            out,
            "kubepki_certificate_not_before_timestamp_seconds{{{}}} {}",
            labels(e, c),
            c.not_before.unix_timestamp()
        );
    }
    family(
        &mut out,
        "kubepki_certificate_missing",
        "1 for each certificate kubeadm expects (or a kubeconfig names) that is absent.",
    );
    for e in report.entries.iter().filter(|e| e.item.is_missing()) {
        let _ = writeln!(
            out,
            "kubepki_certificate_missing{{name=\"{}\",source=\"{}\",path=\"{}\"}} 1",
            escape_label_value(&e.item.name),
            e.item.source().as_str(),
            escape_label_value(&e.item.location.reference()),
        );
    }
    service_account(&mut out, report, family);
    family(
        &mut out,
        "kubepki_check_certificates",
        "Certificates by status (ok, warning, critical, expired, not-yet-valid, invalid, missing).",
    );
    for (status, n) in report.counts() {
        let _ = writeln!(out, "kubepki_check_certificates{{status=\"{}\"}} {n}", ExpiryStatus::as_str(status));
    }
    family(&mut out, "kubepki_check_errors", "Inputs that could not be read or parsed in the last check.");
    let _ = writeln!(out, "kubepki_check_errors {}", report.unreadable());
    family(
        &mut out,
        "kubepki_check_timestamp_seconds",
        "When the check evaluated the certificates, as a Unix timestamp.",
    );
    let _ = writeln!(out, "kubepki_check_timestamp_seconds {}", report.at.unix_timestamp());
    out
}

/// The service-account keys: how many public keys sa.pub trusts (0 if it is absent or holds
/// none kube-apiserver would use), whether sa.key is one of them, and sa.key's age. A file this
/// user may not read has no sample.
fn service_account(out: &mut String, report: &Evaluation<'_>, family: impl Fn(&mut String, &str, &str)) {
    use crate::inventory::sa_keys::TrustedKeys;
    let judged = report.service_account();
    let keys = judged.as_ref().map(|j| j.keys);
    let path = |p: &std::path::Path| escape_label_value(&p.to_string_lossy());
    family(out, "kubepki_sa_public_keys", "Public keys sa.pub holds to verify ServiceAccount tokens with.");
    if let Some(keys) = keys {
        let n = match &keys.trusted {
            TrustedKeys::Read(set) => Some(set.keys.len()),
            TrustedKeys::Missing | TrustedKeys::Invalid(_) => Some(0),
            TrustedKeys::NotReadable => None,
        };
        if let Some(n) = n {
            let _ = writeln!(out, "kubepki_sa_public_keys{{path=\"{}\"}} {n}", path(&keys.pub_path));
        }
    }
    let signing = keys.and_then(|k| Some((k, k.signing_key()?)));
    let labels = |(keys, key): (&crate::inventory::sa_keys::SaKeys, &kubepki_pki::sa::PublicKey)| {
        format!("path=\"{}\",kid=\"{}\",algorithm=\"{}\"", path(&keys.key_path), key.key_id(), key.algorithm())
    };
    family(
        out,
        "kubepki_sa_key_trusted",
        "1 if sa.pub holds the public key of sa.key (the tokens it signs verify), 0 if not.",
    );
    if let Some((keys, key)) = signing {
        let trusted = match &keys.trusted {
            TrustedKeys::Read(set) => Some(set.contains(key)),
            TrustedKeys::Missing | TrustedKeys::Invalid(_) => Some(false),
            TrustedKeys::NotReadable => None,
        };
        if let Some(trusted) = trusted {
            let _ = writeln!(out, "kubepki_sa_key_trusted{{{}}} {}", labels((keys, key)), u8::from(trusted));
        }
    }
    family(
        out,
        "kubepki_sa_key_age_seconds",
        "Age of sa.key at the evaluation time (from its rotate-sa reissue, else its file time).",
    );
    if let (Some(pair), Some(age)) = (signing, judged.as_ref().and_then(|j| j.age_seconds)) {
        let _ = writeln!(out, "kubepki_sa_key_age_seconds{{{}}} {age}", labels(pair));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escape_label_value("CN=plain"), "CN=plain");
        assert_eq!(escape_label_value(r#"O=a\b, CN="x""#), r#"O=a\\b, CN=\"x\""#);
        assert_eq!(escape_label_value("a\nb"), "a\\nb");
        assert_eq!(escape_label_value("tab\tstays, é too"), "tab\tstays, é too");
    }

    #[test]
    fn an_empty_report_still_has_every_family() {
        let inventory = crate::inventory::Inventory::default();
        let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let report = crate::check::evaluate(&inventory, &crate::check::ExpiryPolicy::default(), at);
        let text = render(&report);
        for family in [
            "kubepki_certificate_expiration_timestamp_seconds",
            "kubepki_certificate_not_before_timestamp_seconds",
            "kubepki_certificate_missing",
            "kubepki_sa_public_keys",
            "kubepki_sa_key_trusted",
            "kubepki_sa_key_age_seconds",
            "kubepki_check_certificates",
            "kubepki_check_errors",
            "kubepki_check_timestamp_seconds",
        ] {
            assert!(text.contains(&format!("# TYPE {family} gauge\n")), "{family}");
        }
        // Nothing found at all is one input error: there was nothing to judge.
        assert!(text.ends_with("kubepki_check_errors 1\n# HELP kubepki_check_timestamp_seconds When the check evaluated the certificates, as a Unix timestamp.\n# TYPE kubepki_check_timestamp_seconds gauge\nkubepki_check_timestamp_seconds 1700000000\n"), "{text}");
    }
}
