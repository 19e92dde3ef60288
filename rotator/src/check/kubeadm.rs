//! kubeadm's view of an inventory: exactly what `kubeadm certs check-expiration` prints, as
//! text (`-o kubeadm`) and as the `output.kubeadm.k8s.io/v1alpha3` `CertificateExpirationInfo`
//! object (`-o kubeadm-json`, `-o kubeadm-yaml`), so existing runbooks and parsers keep working.
//!
//! kubeadm lists, sorted by name, the kubeconfigs `admin.conf`, `controller-manager.conf`,
//! `scheduler.conf` and `super-admin.conf` of the kubeconfig dir (not `kubelet.conf`) and the
//! seven cert dir leaves, then the three CAs. Absent files are listed as missing. Without any
//! etcd CA or etcd certificate in the cert dir, etcd is taken to be external and its rows are
//! left out, as kubeadm does for a cluster configured with external etcd.

use serde::Serialize;
use time::{OffsetDateTime, UtcOffset};

use kubepki_pki::CaKind;
use kubepki_pki::{KubeconfigKind, profiles::LEAVES};

use crate::inventory::{Inventory, Item, Location};
use crate::text::{rfc3339, short_human_duration};

/// One row: a certificate or a CA.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ExpirationEntry {
    /// kubeadm's name.
    pub name: String,
    /// NotAfter; `None` when missing.
    pub expiration_date: Option<OffsetDateTime>,
    /// Whole seconds from the evaluation time to NotAfter, truncated toward zero (0 when
    /// missing).
    pub residual_seconds: i64,
    /// Whether the signing CA (for a CA row: the CA) has no key in the cert dir.
    pub externally_managed: bool,
    /// The signing CA's name; empty for CAs and missing rows.
    pub ca_name: String,
    /// Whether the file is absent (or could not be read).
    pub missing: bool,
}

/// `CertificateExpirationInfo`.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ExpirationInfo {
    /// Certificates, sorted by name.
    pub certificates: Vec<ExpirationEntry>,
    /// CAs, sorted by name.
    pub certificate_authorities: Vec<ExpirationEntry>,
}

/// The kubeconfigs kubeadm checks (not `kubelet.conf`: the kubelet manages it).
const KUBECONFIGS: [KubeconfigKind; 4] =
    [KubeconfigKind::Admin, KubeconfigKind::SuperAdmin, KubeconfigKind::ControllerManager, KubeconfigKind::Scheduler];

impl ExpirationInfo {
    /// kubeadm's view of `inventory` at `at`.
    pub fn from_inventory(inventory: &Inventory, at: OffsetDateTime) -> Self {
        let external = |kind: CaKind| inventory.ca(kind).is_some_and(|c| c.external);
        let entry = |name: &str, item: Option<&Item>, ca: Option<CaKind>, externally_managed: bool| match item
            .and_then(Item::cert)
        {
            Some(cert) => ExpirationEntry {
                name: name.to_owned(),
                expiration_date: Some(cert.not_after),
                residual_seconds: (cert.not_after - at).whole_seconds(),
                externally_managed,
                ca_name: ca.map(|c| c.name().to_owned()).unwrap_or_default(),
                missing: false,
            },
            None => ExpirationEntry {
                name: name.to_owned(),
                expiration_date: None,
                residual_seconds: 0,
                externally_managed: false,
                ca_name: String::new(),
                missing: true,
            },
        };
        let cert_dir_item = |base: &str| {
            inventory
                .items
                .iter()
                .find(|i| matches!(&i.location, Location::CertDir { base: b, index: 0, .. } if b == base))
        };
        let kubeconfig_item = |file: &str| {
            let dir = inventory.kubeconfig_dir.as_deref()?;
            let path = dir.join(file);
            inventory.items.iter().find(|i| {
                i.name == file && matches!(&i.location, Location::Kubeconfig { path: p, index: 0, .. } if *p == path)
            })
        };
        let etcd_present = cert_dir_item(CaKind::EtcdCa.base_name()).is_some()
            || LEAVES.iter().any(|s| s.ca == CaKind::EtcdCa && cert_dir_item(s.base_name).is_some());
        let mut certificates: Vec<ExpirationEntry> = KUBECONFIGS
            .iter()
            .map(|k| entry(k.file_name(), kubeconfig_item(k.file_name()), Some(CaKind::Ca), external(CaKind::Ca)))
            .chain(
                LEAVES
                    .iter()
                    .filter(|s| etcd_present || s.ca != CaKind::EtcdCa)
                    .map(|s| entry(s.name, cert_dir_item(s.base_name), Some(s.ca), external(s.ca))),
            )
            .collect();
        certificates.sort_by(|a, b| a.name.cmp(&b.name));
        let mut certificate_authorities: Vec<ExpirationEntry> = CaKind::ALL
            .into_iter()
            .filter(|k| etcd_present || *k != CaKind::EtcdCa)
            .map(|k| entry(k.name(), cert_dir_item(k.base_name()), None, external(k)))
            .collect();
        certificate_authorities.sort_by(|a, b| a.name.cmp(&b.name));
        Self { certificates, certificate_authorities }
    }

    /// The text table of `kubeadm certs check-expiration`, byte for byte.
    pub fn to_text(&self) -> String {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let mut t = String::from("CERTIFICATE\tEXPIRES\tRESIDUAL TIME\tCERTIFICATE AUTHORITY\tEXTERNALLY MANAGED\n");
        for c in &self.certificates {
            match c.expiration_date {
                Some(date) if !c.missing => t.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{:<8}\n",
                    c.name,
                    go_date(date),
                    short_human_duration(c.residual_seconds),
                    c.ca_name,
                    yes_no(c.externally_managed)
                )),
                _ => t.push_str(&format!("!MISSING! {}\t\t\t\t\n", c.name)),
            }
        }
        t.push('\n');
        t.push_str("CERTIFICATE AUTHORITY\tEXPIRES\tRESIDUAL TIME\tEXTERNALLY MANAGED\n");
        for c in &self.certificate_authorities {
            match c.expiration_date {
                Some(date) if !c.missing => t.push_str(&format!(
                    "{}\t{}\t{}\t{:<8}\n",
                    c.name,
                    go_date(date),
                    short_human_duration(c.residual_seconds),
                    yes_no(c.externally_managed)
                )),
                _ => t.push_str(&format!("!MISSING! {}\t\t\t\n", c.name)),
            }
        }
        crate::text::tabwriter::layout(&t, 10, 3)
    }

    fn wire(&self) -> Wire<'_> {
        Wire {
            kind: "CertificateExpirationInfo",
            api_version: "output.kubeadm.k8s.io/v1alpha3",
            certificates: self.certificates.iter().map(WireEntry::from).collect(),
            certificate_authorities: self.certificate_authorities.iter().map(WireEntry::from).collect(),
        }
    }

    /// kubeadm's `-o json`: Go's `json.MarshalIndent` with four spaces, and a newline.
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        self.wire()
            .serialize(&mut ser)
            .expect("invariant: plain structs of strings, numbers and booleans always serialize");
        let mut s = String::from_utf8(out).expect("invariant: serde_json writes UTF-8");
        s.push('\n');
        s
    }

    /// kubeadm's `-o yaml` (sigs.k8s.io/yaml: keys sorted, sequences not indented, timestamps
    /// quoted).
    pub fn to_yaml(&self) -> String {
        let list = |out: &mut String, key: &str, entries: &[ExpirationEntry]| {
            out.push_str(key);
            out.push_str(":\n");
            for e in entries {
                let mut fields: Vec<(&str, String)> = Vec::new();
                if !e.ca_name.is_empty() {
                    fields.push(("caName", yaml_string(&e.ca_name)));
                }
                fields.push((
                    "expirationDate",
                    e.expiration_date.map_or_else(|| "null".to_owned(), |d| format!("\"{}\"", rfc3339(d))),
                ));
                fields.push(("externallyManaged", e.externally_managed.to_string()));
                fields.push(("missing", e.missing.to_string()));
                fields.push(("name", yaml_string(&e.name)));
                fields.push(("residualTime", e.residual_seconds.to_string()));
                for (i, (k, v)) in fields.iter().enumerate() {
                    out.push_str(if i == 0 { "- " } else { "  " });
                    out.push_str(&format!("{k}: {v}\n"));
                }
            }
        };
        let mut out = String::from("apiVersion: output.kubeadm.k8s.io/v1alpha3\n");
        list(&mut out, "certificateAuthorities", &self.certificate_authorities);
        list(&mut out, "certificates", &self.certificates);
        out.push_str("kind: CertificateExpirationInfo\n");
        out
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    kind: &'static str,
    api_version: &'static str,
    certificates: Vec<WireEntry<'a>>,
    certificate_authorities: Vec<WireEntry<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireEntry<'a> {
    name: &'a str,
    expiration_date: Option<String>,
    residual_time: i64,
    externally_managed: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    ca_name: &'a str,
    missing: bool,
}

impl<'a> From<&'a ExpirationEntry> for WireEntry<'a> {
    fn from(e: &'a ExpirationEntry) -> Self {
        Self {
            name: &e.name,
            expiration_date: e.expiration_date.map(rfc3339),
            residual_time: e.residual_seconds,
            externally_managed: e.externally_managed,
            ca_name: &e.ca_name,
            missing: e.missing,
        }
    }
}

/// A YAML scalar as go-yaml writes a string: plain when it reads back as the same string,
/// otherwise double-quoted.
fn yaml_string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
        && !s.starts_with(['-', '.'])
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
        );
    if plain { s.to_owned() } else { serde_json::Value::String(s.to_owned()).to_string() }
}

/// Go's `Jan 02, 2006 15:04 MST` in UTC: `Mar 15, 2023 01:59 UTC`.
pub fn go_date(t: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{} {:02}, {:04} {:02}:{:02} UTC",
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.day(),
        t.year(),
        t.hour(),
        t.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_human_duration_matches_apimachinery() {
        let cases = [
            (-100, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3599, "59m"),
            (3600, "1h"),
            (86_399, "23h"),
            (86_400, "1d"),
            (364 * 86_400 + 86_399, "364d"),
            (365 * 86_400, "1y"),
            (3650 * 86_400 - 1, "9y"),
            (3650 * 86_400 + 300, "10y"),
        ];
        for (s, want) in cases {
            assert_eq!(short_human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn go_date_format() {
        let t = OffsetDateTime::from_unix_timestamp(1_678_845_540).unwrap(); // 2023-03-15T01:59:00Z
        assert_eq!(go_date(t), "Mar 15, 2023 01:59 UTC");
        let t = OffsetDateTime::from_unix_timestamp(1_767_225_599).unwrap(); // 2025-12-31T23:59:59Z
        assert_eq!(go_date(t), "Dec 31, 2025 23:59 UTC");
    }

    fn sample() -> ExpirationInfo {
        let t = |s: i64| Some(OffsetDateTime::from_unix_timestamp(s).unwrap());
        let row = |name: &str, ca: &str, date, residual| ExpirationEntry {
            name: name.into(),
            expiration_date: date,
            residual_seconds: residual,
            externally_managed: false,
            ca_name: ca.into(),
            missing: date.is_none(),
        };
        ExpirationInfo {
            certificates: vec![
                row("admin.conf", "ca", t(1_798_761_600), 31_535_999),
                row("apiserver", "", None, 0),
                row("apiserver-kubelet-client", "ca", t(1_798_761_600), 31_535_999),
            ],
            certificate_authorities: vec![row("ca", "", t(2_114_380_800), 315_359_999), row("etcd-ca", "", None, 0)],
        }
    }

    #[test]
    fn text_is_kubeadms_tabwriter_layout() {
        let want = "\
CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED
admin.conf                 Jan 01, 2027 00:00 UTC   364d            ca                      no      
!MISSING! apiserver                                                                         
apiserver-kubelet-client   Jan 01, 2027 00:00 UTC   364d            ca                      no      

CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED
ca                      Jan 01, 2037 00:00 UTC   9y              no      
!MISSING! etcd-ca                                                
";
        assert_eq!(sample().to_text(), want);
    }

    #[test]
    fn json_is_go_marshal_indent_of_v1alpha3() {
        let json = sample().to_json();
        assert!(json.starts_with(
            "{\n    \"kind\": \"CertificateExpirationInfo\",\n    \"apiVersion\": \"output.kubeadm.k8s.io/v1alpha3\",\n    \"certificates\": [\n        {\n            \"name\": \"admin.conf\",\n            \"expirationDate\": \"2027-01-01T00:00:00Z\",\n            \"residualTime\": 31535999,\n            \"externallyManaged\": false,\n            \"caName\": \"ca\",\n            \"missing\": false\n        },\n"
        ), "{json}");
        assert!(json.contains(
            "        {\n            \"name\": \"apiserver\",\n            \"expirationDate\": null,\n            \"residualTime\": 0,\n            \"externallyManaged\": false,\n            \"missing\": true\n        },"
        ), "{json}");
        assert!(json.ends_with("    ]\n}\n"));
    }

    #[test]
    fn yaml_is_sorted_like_sigs_k8s_io_yaml() {
        let want = "\
apiVersion: output.kubeadm.k8s.io/v1alpha3
certificateAuthorities:
- expirationDate: \"2037-01-01T00:00:00Z\"
  externallyManaged: false
  missing: false
  name: ca
  residualTime: 315359999
- expirationDate: null
  externallyManaged: false
  missing: true
  name: etcd-ca
  residualTime: 0
certificates:
- caName: ca
  expirationDate: \"2027-01-01T00:00:00Z\"
  externallyManaged: false
  missing: false
  name: admin.conf
  residualTime: 31535999
- expirationDate: null
  externallyManaged: false
  missing: true
  name: apiserver
  residualTime: 0
- caName: ca
  expirationDate: \"2027-01-01T00:00:00Z\"
  externallyManaged: false
  missing: false
  name: apiserver-kubelet-client
  residualTime: 31535999
kind: CertificateExpirationInfo
";
        assert_eq!(sample().to_yaml(), want);
    }

    #[test]
    fn yaml_quotes_what_would_not_read_back_as_a_string() {
        assert_eq!(yaml_string("admin.conf"), "admin.conf");
        assert_eq!(yaml_string("etcd-ca"), "etcd-ca");
        for s in ["true", "no", "123", "1e3", "a b", "", "-x", "a:b"] {
            assert!(yaml_string(s).starts_with('"'), "{s}");
        }
    }
}
