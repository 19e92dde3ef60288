//! Command lines as the components parse them: `--name=value` flags (as kubeadm writes them into
//! static pod manifests and `kubeadm-flags.env`), `--name value`, and bare boolean flags.

/// Flags that take no separate value: `--client-cert-auth` alone means `true`, and the next
/// word is never its value (Go's pflag parses booleans this way).
const BOOLEAN_FLAGS: &[&str] = &[
    "allow-privileged",
    "anonymous-auth",
    "client-cert-auth",
    "enable-bootstrap-token-auth",
    "leader-elect",
    "peer-client-cert-auth",
    "rotate-certificates",
    "rotate-server-certificates",
    "use-service-account-credentials",
];

/// The flags of one command line, in order; a later occurrence overrides an earlier one.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct Flags {
    flags: Vec<(String, Option<String>)>,
}

impl Flags {
    /// Parses the words of a command line. Words that are not flags (the program, positional
    /// arguments) are ignored.
    ///
    /// ```
    /// use kubepki_rotator::inventory::flags::Flags;
    ///
    /// let f = Flags::parse(["etcd", "--client-cert-auth=true", "--data-dir", "/var/lib/etcd", "--peer-client-cert-auth"]);
    /// assert_eq!(f.get("data-dir"), Some("/var/lib/etcd"));
    /// assert_eq!(f.boolean("client-cert-auth"), Some(Ok(true)));
    /// assert_eq!(f.boolean("peer-client-cert-auth"), Some(Ok(true)));
    /// assert_eq!(f.get("listen-client-urls"), None);
    /// ```
    pub fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        let mut flags = Vec::new();
        let mut words = words.into_iter().peekable();
        while let Some(word) = words.next() {
            let Some(body) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')).filter(|b| !b.is_empty())
            else {
                continue;
            };
            if let Some((name, value)) = body.split_once('=') {
                flags.push((name.to_owned(), Some(value.to_owned())));
                continue;
            }
            let takes_value = !BOOLEAN_FLAGS.contains(&body);
            let value = match words.peek() {
                Some(next) if takes_value && !next.starts_with('-') => words.next().map(str::to_owned),
                _ => None,
            };
            flags.push((body.to_owned(), value));
        }
        Self { flags }
    }

    /// Appends the flags of `later`, which override these.
    pub fn extend(&mut self, later: Self) {
        self.flags.extend(later.flags);
    }

    /// Whether the flag is given at all.
    pub fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(n, _)| n == name)
    }

    /// The value of the last occurrence of the flag; a bare flag has the value `true`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_deref().unwrap_or("true"))
    }

    /// The values of every occurrence of a repeatable flag, in order
    /// (`--service-account-key-file` may be given several times; each names a file).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.flags.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_deref().unwrap_or("true")).collect()
    }

    /// A boolean flag, as Go's `strconv.ParseBool` reads it; `Err` holds a value that is not a
    /// boolean.
    pub fn boolean(&self, name: &str) -> Option<Result<bool, String>> {
        self.get(name).map(|v| parse_bool(v).ok_or_else(|| v.to_owned()))
    }

    /// Every flag given, each once with its effective value (the last occurrence's), in the
    /// order first given.
    pub fn effective(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for (name, _) in &self.flags {
            if !out.iter().any(|(n, _)| n == name)
                && let Some(v) = self.get(name)
            {
                out.push((name, v));
            }
        }
        out
    }

    /// A comma-separated list flag (`--authorization-mode=Node,RBAC`), trimmed, without empty
    /// entries.
    pub fn list(&self, name: &str) -> Option<Vec<&str>> {
        self.get(name).map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect())
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The words of a shell-style value: split on whitespace, with single and double quotes and
/// backslash escapes (what systemd does with `$VAR` in `ExecStart=`, near enough for flags).
pub fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => word.extend(chars.next()),
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                word.extend(chars.next());
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The variables of an environment file (`KEY=value` lines, `#` comments, an optional
/// `export`, quoted values), as `kubeadm-flags.env` and `/etc/default/kubelet` are written.
pub fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_owned(), unquote(v.trim()).to_owned()))
        })
        .collect()
}

/// `v` without one pair of surrounding quotes.
fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_flag_keeps_every_value() {
        let f = Flags::parse(["--service-account-key-file=/a", "--x", "--service-account-key-file", "/b"]);
        assert_eq!(f.all("service-account-key-file"), ["/a", "/b"]);
        assert_eq!(f.get("service-account-key-file"), Some("/b"));
        assert!(f.all("absent").is_empty());
    }

    #[test]
    fn later_flags_override_earlier_ones() {
        let mut f = Flags::parse(["--anonymous-auth=true"]);
        f.extend(Flags::parse(["--anonymous-auth=false"]));
        assert_eq!(f.boolean("anonymous-auth"), Some(Ok(false)));
    }

    #[test]
    fn a_boolean_flag_never_swallows_the_next_word() {
        let f = Flags::parse(["--anonymous-auth", "kube-apiserver"]);
        assert_eq!(f.get("anonymous-auth"), Some("true"));
        let f = Flags::parse(["--anonymous-auth", "--x=1"]);
        assert_eq!(f.get("anonymous-auth"), Some("true"));
        assert_eq!(f.get("x"), Some("1"));
    }

    #[test]
    fn a_value_that_is_not_a_boolean_is_reported() {
        let f = Flags::parse(["--client-cert-auth=yes"]);
        assert_eq!(f.boolean("client-cert-auth"), Some(Err("yes".into())));
    }

    #[test]
    fn lists_are_trimmed() {
        let f = Flags::parse(["--authorization-mode= Node, RBAC,"]);
        assert_eq!(f.list("authorization-mode"), Some(vec!["Node", "RBAC"]));
    }

    #[test]
    fn env_files_are_read_as_systemd_reads_them() {
        let env = env_file(
            "# written by kubeadm\nKUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --read-only-port=10255\"\n\nexport KUBELET_EXTRA_ARGS='--node-ip=10.0.0.5'\n",
        );
        assert_eq!(env.len(), 2);
        assert_eq!(env[0].0, "KUBELET_KUBEADM_ARGS");
        let words = split_words(&env[0].1);
        assert_eq!(
            words,
            ["--container-runtime-endpoint=unix:///run/containerd/containerd.sock", "--read-only-port=10255"]
        );
        assert_eq!(env[1], ("KUBELET_EXTRA_ARGS".to_owned(), "--node-ip=10.0.0.5".to_owned()));
    }

    #[test]
    fn quotes_and_escapes_group_words() {
        assert_eq!(split_words(r#"a "b c" 'd e' f\ g"#), ["a", "b c", "d e", "f g"]);
        assert!(split_words("   ").is_empty());
    }
}
