//! `check -o json` and `-o yaml`: the document written as it is made. The inventory's items and
//! the files of a [`FileScan`] are judged and written a chunk at a time, so a check of
//! thousands of files holds one chunk in memory; every view type here borrows from the item it
//! shows and formats times, serials and names as it writes them.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use time::OffsetDateTime;

use super::sa_keys::SaJudgement;
use super::{ExpiryPolicy, Judged, Threshold, Verdict, invalid, judge, missing};
use crate::inventory::scan::{Chunk, FileScan};
use crate::inventory::{InputError, Inventory, Item, Location, SourceKind, Stored};
use crate::text::{Rfc3339Utc, rfc3339};

/// How many certificate files a streamed document reads and judges at a time.
pub const CHUNK: usize = 512;

/// The document of `-o json` and `-o yaml`, made as it is written: `at`, `thresholds`, `items`,
/// `errors`, `warnings`, `verdict`, `exitCode`. The items are the inventory's certificates in
/// discovery order, with the files of a [`FileScan`] read, linked and judged [`CHUNK`] at a time
/// where the inventory's files would stand (before Secrets and endpoints): only one chunk of
/// them is in memory at once, so `check --file DIR` holds thousands of certificates no longer
/// than it takes to write them. The verdict is known once the items are written, hence its
/// place after them.
pub struct Document<'a> {
    inventory: &'a Inventory,
    scan: RefCell<Option<FileScan>>,
    policy: ExpiryPolicy,
    at: OffsetDateTime,
    tally: RefCell<Tally>,
}

/// What a written [`Document`] reported: for the exit code and the messages on standard error.
#[derive(Debug)]
pub struct Tally {
    /// How many certificates were reported.
    pub items: usize,
    /// The overall verdict (items, input errors and warnings).
    pub verdict: Verdict,
    /// Every input error: the inventory's and the files'.
    pub errors: Vec<InputError>,
    /// The invalid certificates: name and why.
    pub invalid: Vec<(String, String)>,
    /// The missing certificates: name and which file is absent.
    pub missing: Vec<(String, String)>,
}

impl<'a> Document<'a> {
    /// The document of `inventory`, with the files of `scan` read as it is written.
    pub fn new(inventory: &'a Inventory, scan: Option<FileScan>, policy: &ExpiryPolicy, at: OffsetDateTime) -> Self {
        let mut errors = inventory.errors.clone();
        let scan = scan.map(|mut scan| {
            errors.append(&mut scan.errors);
            scan
        });
        Self {
            inventory,
            scan: RefCell::new(scan),
            policy: *policy,
            at,
            tally: RefCell::new(Tally {
                items: 0,
                verdict: Verdict::Ok,
                errors,
                invalid: Vec::new(),
                missing: Vec::new(),
            }),
        }
    }

    /// Writes it as pretty JSON with a trailing newline: the bytes serde_json's pretty printer
    /// makes of the document (a test holds it to them), with the files of the scan judged and
    /// written on rayon's pool, a chunk at a time, while the previous chunk is written out. The
    /// files are read by the first write; [`into_tally`](Self::into_tally) then says what was
    /// reported.
    pub fn write_json(&self, mut out: impl std::io::Write) -> std::io::Result<()> {
        let (policy, at) = (&self.policy, self.at);
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(b"{\n  \"at\": ");
        nested_json(&mut head, &rfc3339(at), 1);
        head.extend_from_slice(b",\n  \"thresholds\": ");
        nested_json(&mut head, &self.thresholds(), 1);
        head.extend_from_slice(b",\n  \"items\": [");
        out.write_all(&head)?;
        let mut first = true;
        // Each item judged and written as JSON: the scanned ones on the pool, the inventory's
        // own here.
        let write = |item: &Item| WrittenItem::of(&judge(item, policy, at));
        self.items(
            write,
            |item| write(&item),
            |written: WrittenItem| -> std::io::Result<()> {
                out.write_all(if first { b"\n    " } else { b",\n    " })?;
                first = false;
                self.count(written.verdict, written.invalid, written.missing);
                out.write_all(&written.json)
            },
        )?;
        let mut tail = Vec::with_capacity(256);
        tail.extend_from_slice(if first { b"]" } else { b"\n  ]" });
        tail.extend_from_slice(b",\n  \"serviceAccountKeys\": ");
        nested_json(&mut tail, &self.service_account().map(|j| j.view()), 1);
        let verdict = self.final_verdict();
        let tally = self.tally.borrow();
        let errors: Vec<ErrorView<'_>> =
            tally.errors.iter().map(|e| ErrorView { input: &e.input, message: &e.message }).collect();
        tail.extend_from_slice(b",\n  \"errors\": ");
        nested_json(&mut tail, &errors, 1);
        tail.extend_from_slice(b",\n  \"warnings\": ");
        nested_json(&mut tail, &self.inventory.warnings, 1);
        tail.extend_from_slice(b",\n  \"keysNotChecked\": ");
        nested_json(&mut tail, &self.inventory.keys_not_read, 1);
        tail.extend_from_slice(b",\n  \"verdict\": ");
        nested_json(&mut tail, verdict.as_str(), 1);
        tail.extend_from_slice(b",\n  \"exitCode\": ");
        nested_json(&mut tail, &verdict.exit_code(), 1);
        tail.extend_from_slice(b"\n}\n");
        out.write_all(&tail)
    }

    /// Puts every item in document order: the inventory's local certificates (`local`, on
    /// this thread), the files of the scan (`scanned` on rayon's pool, read and linked a chunk at
    /// a time by a reader thread while the previous chunk is put; their errors are tallied),
    /// then Secrets and served chains (`local`).
    fn items<'s, T: Send, E>(
        &'s self,
        local: impl Fn(&'s Item) -> T,
        scanned: impl Fn(Item) -> T + Sync,
        mut put: impl FnMut(T) -> Result<(), E>,
    ) -> Result<(), E> {
        let remote = |item: &Item| matches!(item.source(), SourceKind::Secret | SourceKind::Endpoint);
        for item in self.inventory.reported().filter(|i| !remote(i)) {
            put(local(item))?;
        }
        if let Some(scan) = self.scan.borrow_mut().take() {
            let (inventory, scanned) = (self.inventory, &scanned);
            std::thread::scope(|scope| {
                // A rendezvous: at most one chunk is made ahead of the one being put.
                let (send, chunks) = std::sync::mpsc::sync_channel(0);
                scope.spawn(move || {
                    let each = |mut item: Item| {
                        inventory.link(&mut item);
                        scanned(item)
                    };
                    for chunk in scan.chunks(CHUNK, each) {
                        if send.send(chunk).is_err() {
                            return; // the writer stopped (a closed pipe)
                        }
                    }
                });
                for chunk in chunks {
                    let Chunk { items, mut errors } = chunk;
                    items.into_iter().try_for_each(&mut put)?;
                    self.tally.borrow_mut().errors.append(&mut errors);
                }
                Ok(())
            })?;
        }
        self.inventory.reported().filter(|i| remote(i)).try_for_each(|item| put(local(item)))
    }

    fn thresholds(&self) -> Thresholds {
        Thresholds {
            warn: self.policy.warn.to_string(),
            crit: self.policy.crit.to_string(),
            sa_max_age: self.policy.sa_max_age.map(|d| Threshold::Remaining(d).to_string()),
        }
    }

    /// The service-account keys judged, their status counted in the verdict.
    fn service_account(&self) -> Option<SaJudgement<'a>> {
        let judged = self.inventory.service_account.as_ref()?.judge(self.policy.sa_max_age, self.at);
        let mut tally = self.tally.borrow_mut();
        tally.verdict = tally.verdict.worst(judged.status.verdict());
        Some(judged)
    }

    /// Counts one written item.
    fn count(&self, verdict: Verdict, invalid: Option<(String, String)>, missing: Option<(String, String)>) {
        let mut tally = self.tally.borrow_mut();
        tally.items += 1;
        tally.verdict = tally.verdict.worst(verdict);
        tally.invalid.extend(invalid);
        tally.missing.extend(missing);
    }

    /// Once every item is written: the overall verdict, with the input errors and warnings
    /// (nothing found at all is one: [`Inventory::nothing_found`]).
    fn final_verdict(&self) -> Verdict {
        let mut tally = self.tally.borrow_mut();
        if tally.items == 0 && tally.errors.is_empty() {
            tally.errors.push(self.inventory.nothing_found());
        }
        tally.verdict = tally.verdict.with_inputs(!tally.errors.is_empty(), !self.inventory.warnings.is_empty());
        tally.verdict
    }

    /// What the document reported (as far as it was written).
    pub fn into_tally(self) -> Tally {
        self.tally.into_inner()
    }

    /// Writes one judged item and counts it.
    fn item<S: SerializeSeq>(&self, seq: &mut S, entry: &Judged<'_>) -> Result<(), S::Error> {
        self.count(entry.status.verdict(), invalid(entry), missing(entry));
        seq.serialize_element(&ItemView::from(entry))
    }
}

/// One item as the JSON document holds it, and what the tally needs of it.
struct WrittenItem {
    json: Vec<u8>,
    verdict: Verdict,
    invalid: Option<(String, String)>,
    missing: Option<(String, String)>,
}

impl WrittenItem {
    fn of(entry: &Judged<'_>) -> Self {
        let mut json = Vec::with_capacity(2048);
        nested_json(&mut json, &ItemView::from(entry), 2);
        Self { json, verdict: entry.status.verdict(), invalid: invalid(entry), missing: missing(entry) }
    }
}

/// Appends `value` as serde_json's pretty printer writes it `depth` levels deep in a document
/// (two spaces a level): [`Nested`] is its `PrettyFormatter` started at that depth.
fn nested_json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized), depth: usize) {
    let mut serializer = serde_json::Serializer::with_formatter(out, Nested { depth, has_value: false });
    value
        .serialize(&mut serializer)
        .expect("invariant: the views serialize infallibly into memory (string keys, finite numbers)");
}

/// serde_json's `PrettyFormatter` (two-space indent), starting `depth` levels deep.
struct Nested {
    depth: usize,
    has_value: bool,
}

impl Nested {
    /// `[` or `{`: one level deeper, nothing in it yet.
    fn open<W: ?Sized + std::io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    /// `]` or `}`: on a line of its own after values, right after the opening one otherwise.
    fn close<W: ?Sized + std::io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(bracket)
    }

    fn newline<W: ?Sized + std::io::Write>(&self, w: &mut W, comma: bool) -> std::io::Result<()> {
        const SPACES: &[u8; 64] = &[b' '; 64];
        w.write_all(if comma { b",\n" } else { b"\n" })?;
        let mut n = 2 * self.depth;
        while n > 0 {
            let k = n.min(SPACES.len());
            w.write_all(&SPACES[..k])?;
            n -= k;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Nested {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.newline(w, !first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.newline(w, !first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

impl Serialize for Document<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("at", &rfc3339(self.at))?;
        map.serialize_entry("thresholds", &self.thresholds())?;
        map.serialize_entry("items", &DocumentItems(self))?;
        map.serialize_entry("serviceAccountKeys", &self.service_account().map(|j| j.view()))?;
        let verdict = self.final_verdict();
        let tally = self.tally.borrow();
        let errors: Vec<ErrorView<'_>> =
            tally.errors.iter().map(|e| ErrorView { input: &e.input, message: &e.message }).collect();
        map.serialize_entry("errors", &errors)?;
        map.serialize_entry("warnings", &self.inventory.warnings)?;
        map.serialize_entry("keysNotChecked", &self.inventory.keys_not_read)?;
        map.serialize_entry("verdict", verdict.as_str())?;
        map.serialize_entry("exitCode", &verdict.exit_code())?;
        map.end()
    }
}

/// The `items` of a [`Document`]: the inventory's local certificates, the scanned files, then
/// Secrets and served chains (discovery order).
struct DocumentItems<'d, 'a>(&'d Document<'a>);

impl Serialize for DocumentItems<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let doc = self.0;
        let mut seq = serializer.serialize_seq(None)?;
        // Scanned items are judged here as they are written: the view borrows them.
        doc.items(Cow::Borrowed, Cow::Owned, |item: Cow<'_, Item>| {
            doc.item(&mut seq, &judge(&item, &doc.policy, doc.at))
        })?;
        seq.end()
    }
}

/// `--warn`, `--crit` and `--sa-max-age`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    /// `--warn`.
    pub warn: String,
    /// `--crit`.
    pub crit: String,
    /// `--sa-max-age`, only when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sa_max_age: Option<String>,
}

/// An input error.
#[derive(Debug, Serialize)]
pub struct ErrorView<'a> {
    /// The path or reference.
    pub input: &'a str,
    /// What went wrong.
    pub message: &'a str,
}

/// A finding.
#[derive(Debug, Serialize)]
pub struct FindingView {
    /// The stable identifier (`key-mismatch`, ...).
    pub code: &'static str,
    /// `warning` or `critical`.
    pub severity: &'static str,
    /// A sentence for people.
    pub message: String,
}

/// One certificate in `-o json`; certificate fields are null for an invalid item. Written
/// straight from the item (borrowed strings, times and hex formatted as they are written): a
/// check of thousands of files writes thousands of these.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemView<'a> {
    /// The item's name.
    pub name: &'a str,
    /// `cert-dir`, `kubeconfig`, `kubelet`, `file`, `secret` or `endpoint`.
    pub source: &'static str,
    /// The file, `NAMESPACE/NAME:KEY` or `HOST:PORT`.
    pub path: Cow<'a, str>,
    /// The status.
    pub status: &'static str,
    /// The subject, as openssl prints it.
    pub subject: Option<&'a str>,
    /// The issuer.
    pub issuer: Option<&'a str>,
    /// The serial number in lowercase hex.
    pub serial: Option<&'a str>,
    /// NotBefore, RFC 3339.
    pub not_before: Option<Rfc3339Utc>,
    /// NotAfter, RFC 3339.
    pub not_after: Option<Rfc3339Utc>,
    /// Seconds from the evaluation time to NotAfter (negative once expired).
    pub residual_seconds: Option<i64>,
    /// Share of the lifetime used at the evaluation time, in percent, two decimals.
    pub lifetime_used_percent: Option<f64>,
    /// The cert dir CA that signed it.
    pub ca_name: Option<&'a str>,
    /// Whether that CA's key is absent.
    pub externally_managed: bool,
    /// Whether it is a CA certificate.
    pub is_ca: Option<bool>,
    /// `ECDSA-P256`, `RSA-2048`, ...
    pub public_key: Option<Shown<&'a kubepki_pki::PublicKeyKind>>,
    /// `ecdsa-with-SHA256`, ...
    pub signature_algorithm: Option<&'static str>,
    /// DNS SANs.
    pub dns_names: Names<'a>,
    /// IP SANs.
    pub ip_addresses: Names<'a>,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: Option<kubepki_pki::Fingerprint>,
    /// Findings beyond the dates.
    pub findings: Vec<FindingView>,
    /// The typed location (`kind` plus its fields).
    pub location: LocationView<'a>,
    /// Why the certificate could not be read (invalid items), or which file is absent
    /// (missing and key-only items).
    pub error: Option<&'a str>,
}

impl<'a> From<&Judged<'a>> for ItemView<'a> {
    fn from(e: &Judged<'a>) -> Self {
        let item: &'a Item = e.item;
        let cert = item.cert();
        ItemView {
            name: &item.name,
            source: item.source().as_str(),
            path: item.location.reference_str(),
            status: e.status.as_str(),
            subject: cert.map(|c| c.subject_string.as_str()),
            issuer: cert.map(|c| c.issuer_string.as_str()),
            serial: cert.map(|c| c.serial.as_str()),
            not_before: cert.map(|c| Rfc3339Utc(c.not_before)),
            not_after: cert.map(|c| Rfc3339Utc(c.not_after)),
            residual_seconds: e.residual_seconds,
            lifetime_used_percent: e.lifetime_used_percent.map(|p| (p * 100.0).round() / 100.0),
            ca_name: item.ca_name.as_deref(),
            externally_managed: item.externally_managed,
            is_ca: cert.map(|c| c.is_ca),
            public_key: cert.map(|c| Shown(&c.public_key)),
            signature_algorithm: cert.map(|c| c.signature_algorithm),
            dns_names: Names::Dns(cert.map(|c| &c.sans)),
            ip_addresses: Names::Ip(cert.map(|c| &c.sans)),
            sha256: cert.map(kubepki_pki::Certificate::fingerprint),
            findings: item
                .findings
                .iter()
                .map(|f| FindingView { code: f.code(), severity: f.severity().as_str(), message: f.to_string() })
                .collect(),
            location: LocationView(&item.location),
            error: item.certificate.as_ref().err().map(String::as_str),
        }
    }
}

/// A value written as the text its `Display` makes, without an intermediate `String`.
pub struct Shown<T>(pub T);

impl<T: fmt::Display> Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A certificate's DNS or IP SANs as a list (empty for an invalid item).
pub enum Names<'a> {
    /// The DNS names.
    Dns(Option<&'a kubepki_pki::AltNames>),
    /// The IP addresses.
    Ip(Option<&'a kubepki_pki::AltNames>),
}

impl Serialize for Names<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Self::Dns(sans) => serializer.collect_seq(sans.into_iter().flat_map(|s| s.dns_names())),
            Self::Ip(sans) => serializer.collect_seq(sans.into_iter().flat_map(|s| s.ip_addresses()).map(Shown)),
        }
    }
}

/// Where a certificate is, as JSON: `kind` plus the fields of that kind, keys in alphabetical
/// order. Paths that are not UTF-8 are written lossily.
pub struct LocationView<'a>(pub &'a Location);

/// A path as text.
fn path_str(path: &std::path::Path) -> Cow<'_, str> {
    path.to_string_lossy()
}

/// How a kubeconfig holds something: `embedded`, or the file it names.
struct StoredView<'a>(&'a Stored);

impl Serialize for StoredView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Stored::Embedded => serializer.serialize_str("embedded"),
            Stored::File(p) => serializer.serialize_str(&path_str(p)),
        }
    }
}

impl Serialize for LocationView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self.0 {
            Location::CertDir { base, cert_path, key_path, index } => {
                map.serialize_entry("base", base)?;
                map.serialize_entry("certPath", &path_str(cert_path))?;
                map.serialize_entry("index", index)?;
                map.serialize_entry("keyPath", &path_str(key_path))?;
                map.serialize_entry("kind", "cert-dir")?;
            }
            Location::Kubeconfig { path, user, cert, key, index } => {
                map.serialize_entry("certificate", &StoredView(cert))?;
                map.serialize_entry("index", index)?;
                map.serialize_entry("key", &key.as_ref().map(StoredView))?;
                map.serialize_entry("kind", "kubeconfig")?;
                map.serialize_entry("path", &path_str(path))?;
                map.serialize_entry("user", user)?;
            }
            Location::KubeconfigCa { path, cluster, ca, index } => {
                map.serialize_entry("certificateAuthority", &StoredView(ca))?;
                map.serialize_entry("cluster", cluster)?;
                map.serialize_entry("index", index)?;
                map.serialize_entry("kind", "kubeconfig-ca")?;
                map.serialize_entry("path", &path_str(path))?;
            }
            Location::KubeletPem { path, key_path, index } => {
                map.serialize_entry("index", index)?;
                map.serialize_entry("keyPath", &path_str(key_path))?;
                map.serialize_entry("kind", "kubelet")?;
                map.serialize_entry("path", &path_str(path))?;
            }
            Location::File { path, index } => {
                map.serialize_entry("index", index)?;
                map.serialize_entry("kind", "file")?;
                map.serialize_entry("path", &path_str(path))?;
            }
            Location::Secret { namespace, name, key, index } => {
                map.serialize_entry("index", index)?;
                map.serialize_entry("key", key)?;
                map.serialize_entry("kind", "secret")?;
                map.serialize_entry("name", name)?;
                map.serialize_entry("namespace", namespace)?;
            }
            Location::Endpoint { address, index } => {
                map.serialize_entry("address", address)?;
                map.serialize_entry("index", index)?;
                map.serialize_entry("kind", "endpoint")?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    /// The streamed writer makes the bytes serde_json's pretty printer makes of the same
    /// document, and counts the same: more files than a chunk, a valid and an expired
    /// certificate, an unreadable file (an item), a missing path (an input error).
    #[test]
    fn write_json_is_serde_jsons_pretty_layout() {
        use kubepki_pki::Validity;
        let dir = tempfile::tempdir().unwrap();
        let key = kubepki_pki::KeyAlgorithm::EcdsaP256.generate().unwrap();
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        for (name, from, to) in [("ok.crt", -1, 365), ("expired.crt", -30, -1)] {
            let validity = Validity { not_before: now + Duration::days(from), not_after: now + Duration::days(to) };
            let ca = kubepki_pki::self_signed_ca(name, &key, validity).unwrap();
            std::fs::write(dir.path().join(name), ca.to_pem()).unwrap();
        }
        for i in 0..CHUNK + 10 {
            std::fs::copy(dir.path().join("ok.crt"), dir.path().join(format!("n{i:04}.crt"))).unwrap();
        }
        std::fs::write(dir.path().join("garbage.crt"), "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
        let paths = [dir.path().to_path_buf(), dir.path().join("missing.crt")];
        let inventory = Inventory::default();
        let policy = ExpiryPolicy { warn: "30d".parse().unwrap(), crit: "7d".parse().unwrap(), sa_max_age: None };
        let document = || Document::new(&inventory, Some(FileScan::walk(&paths)), &policy, now);
        let (streamed, serde) = (document(), document());
        let mut ours = Vec::new();
        streamed.write_json(&mut ours).unwrap();
        let mut theirs = serde_json::to_vec_pretty(&serde).unwrap();
        theirs.push(b'\n');
        assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
        let (a, b) = (streamed.into_tally(), serde.into_tally());
        assert_eq!(
            (a.items, a.verdict, a.errors.len(), a.invalid.len()),
            (b.items, b.verdict, b.errors.len(), b.invalid.len())
        );
        assert_eq!((a.items, a.verdict, a.errors.len(), a.invalid.len()), (CHUNK + 13, Verdict::Critical, 1, 1));
    }
}
