//! Subject alternative names, normalised as kubeadm normalises them.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use crate::error::{Error, Result};

/// A set of DNS and IP subject alternative names.
///
/// DNS names are kept deduplicated and sorted by byte order; IP addresses deduplicated in the
/// order they were added. That is exactly kubeadm's `RemoveDuplicateAltNames`, so a leaf's SAN
/// extension comes out byte-for-byte in kubeadm's order.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct AltNames {
    dns: BTreeSet<String>,
    ips: Vec<IpAddr>,
}

impl AltNames {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a DNS name (no validation: callers add names they built themselves).
    pub fn add_dns(&mut self, name: impl Into<String>) {
        self.dns.insert(name.into());
    }

    /// Adds an IP address unless it is already present.
    pub fn add_ip(&mut self, ip: IpAddr) {
        if !self.ips.contains(&ip) {
            self.ips.push(ip);
        }
    }

    /// Adds a user-supplied SAN as kubeadm's `appendSANsToAltNames` does: an IP address goes to
    /// the IPs, an RFC 1123 subdomain or wildcard (`*.example.com`) to the DNS names, and
    /// anything else is an error naming the value and the certificate (kubeadm only warns and
    /// drops it; we refuse rather than issue a certificate without a SAN that was asked for).
    pub fn add_parsed(&mut self, value: &str, cert: &str) -> Result<()> {
        let value = value.trim();
        if let Ok(ip) = value.parse::<IpAddr>() {
            self.add_ip(ip);
            return Ok(());
        }
        if is_dns1123_subdomain(value) || value.strip_prefix("*.").is_some_and(is_dns1123_subdomain) {
            self.add_dns(value);
            return Ok(());
        }
        Err(Error::InvalidValue {
            field: "subject alternative name",
            value: value.to_owned(),
            reason: format!(
                "not an IP address, an RFC 1123 DNS subdomain or a wildcard subdomain; it cannot be added to the {cert} certificate"
            ),
        })
    }

    /// DNS names, sorted.
    pub fn dns_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.dns.iter().map(String::as_str)
    }

    /// IP addresses, in insertion order.
    pub fn ip_addresses(&self) -> &[IpAddr] {
        &self.ips
    }

    /// Whether there are no names at all.
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.ips.is_empty()
    }

    /// The names in `self` that `other` lacks: `(dns, ips)`.
    pub fn missing_from(&self, other: &Self) -> (Vec<String>, Vec<IpAddr>) {
        let dns = self.dns.difference(&other.dns).cloned().collect();
        let ips = self.ips.iter().filter(|ip| !other.ips.contains(ip)).copied().collect();
        (dns, ips)
    }

    /// Adds every name of `other` that is not here yet (IP addresses after these).
    pub fn extend(&mut self, other: &Self) {
        self.dns.extend(other.dns.iter().cloned());
        for ip in &other.ips {
            self.add_ip(*ip);
        }
    }

    /// Removes every name of `other`.
    pub fn remove(&mut self, other: &Self) {
        self.dns.retain(|d| !other.dns.contains(d));
        self.ips.retain(|ip| !other.ips.contains(ip));
    }

    /// Whether both hold the same names, whatever the IP order.
    pub fn same_names(&self, other: &Self) -> bool {
        let (a, b) = self.missing_from(other);
        let (c, d) = other.missing_from(self);
        a.is_empty() && b.is_empty() && c.is_empty() && d.is_empty()
    }
}

impl fmt::Display for AltNames {
    /// `DNS:a, DNS:b, IP:10.0.0.1`, as openssl prints SANs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for d in &self.dns {
            write!(f, "{}DNS:{d}", if first { "" } else { ", " })?;
            first = false;
        }
        for ip in &self.ips {
            write!(f, "{}IP:{ip}", if first { "" } else { ", " })?;
            first = false;
        }
        Ok(())
    }
}

/// Kubernetes' `IsDNS1123Subdomain`: lowercase alphanumerics, `-` and `.`, each label starting
/// and ending with an alphanumeric, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// The first usable address (network + 1) of the first CIDR in a comma-separated list, as
/// kubeadm's `GetAPIServerVirtualIP` computes the `kubernetes` Service IP (`10.96.0.1` for
/// `10.96.0.0/12`).
pub fn first_service_ip(service_cidrs: &str) -> Result<IpAddr> {
    let first = service_cidrs.split(',').next().unwrap_or("").trim();
    let invalid = |reason: &str| Error::InvalidValue {
        field: "service CIDR",
        value: service_cidrs.to_owned(),
        reason: reason.to_owned(),
    };
    let (addr, prefix) = first.split_once('/').ok_or_else(|| invalid("expected ADDRESS/PREFIX, like 10.96.0.0/12"))?;
    let addr: IpAddr = addr.parse().map_err(|_| invalid("the address is not an IP address"))?;
    let prefix: u32 = prefix.parse().map_err(|_| invalid("the prefix length is not a number"))?;
    Ok(match addr {
        IpAddr::V4(v4) => {
            if prefix > 30 {
                return Err(invalid(
                    "the prefix length must be at most 30 for IPv4 (the range needs a usable address)",
                ));
            }
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            IpAddr::from((u32::from(v4) & mask).wrapping_add(1).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            if prefix > 126 {
                return Err(invalid("the prefix length must be at most 126 for IPv6"));
            }
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            IpAddr::from((u128::from(v6) & mask).wrapping_add(1).to_be_bytes())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_sorted_and_deduplicated_ips_in_insertion_order() {
        let mut n = AltNames::new();
        for d in ["kubernetes.default", "cp1", "kubernetes", "cp1"] {
            n.add_dns(d);
        }
        for ip in ["10.96.0.1", "192.168.0.10", "10.96.0.1", "127.0.0.1"] {
            n.add_ip(ip.parse().unwrap());
        }
        assert_eq!(n.dns_names().collect::<Vec<_>>(), ["cp1", "kubernetes", "kubernetes.default"]);
        assert_eq!(
            n.to_string(),
            "DNS:cp1, DNS:kubernetes, DNS:kubernetes.default, IP:10.96.0.1, IP:192.168.0.10, IP:127.0.0.1"
        );
    }

    #[test]
    fn extra_sans_are_parsed_as_ip_or_dns_and_invalid_ones_refused() {
        let mut n = AltNames::new();
        n.add_parsed("10.0.0.5", "apiserver").unwrap();
        n.add_parsed("fd00::5", "apiserver").unwrap();
        n.add_parsed("api.example.com", "apiserver").unwrap();
        n.add_parsed("*.example.com", "apiserver").unwrap();
        assert_eq!(n.to_string(), "DNS:*.example.com, DNS:api.example.com, IP:10.0.0.5, IP:fd00::5");
        for bad in ["Bad_Name", "-lead.example", "a..b", "*", "*.*.x", "", "a b", "http://x"] {
            let err = n.add_parsed(bad, "apiserver").unwrap_err().to_string();
            assert!(err.contains("apiserver certificate"), "{bad}: {err}");
        }
    }

    #[test]
    fn first_service_ip_of_the_first_cidr() {
        assert_eq!(first_service_ip("10.96.0.0/12").unwrap().to_string(), "10.96.0.1");
        assert_eq!(first_service_ip("10.100.5.7/16").unwrap().to_string(), "10.100.0.1");
        assert_eq!(first_service_ip("fd00:10:96::/108,10.96.0.0/12").unwrap().to_string(), "fd00:10:96::1");
        for bad in ["10.96.0.0", "10.96.0.0/33", "x/12", "10.96.0.0/x", "10.0.0.0/31"] {
            assert!(first_service_ip(bad).is_err(), "{bad}");
        }
    }
}
