//! IPv4 CIDR arithmetic for input checks: parsing, containment, overlap, and the five
//! addresses AWS reserves in every subnet.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use iac_core::provider::known::known_str;
use iac_core::{CheckFailure, Properties};

/// An IPv4 network in CIDR notation, normalised (host bits must be zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: u32,
    prefix: u8,
}

impl Cidr {
    /// The prefix length.
    pub fn prefix(self) -> u8 {
        self.prefix
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    fn broadcast(self) -> u32 {
        self.network | !self.mask()
    }

    /// The `index`-th block of length `prefix` inside this network, if there is one.
    pub fn subnet(self, prefix: u8, index: u32) -> Option<Cidr> {
        if prefix < self.prefix || prefix > 32 {
            return None;
        }
        let size = 1u64 << (32 - u32::from(prefix));
        let offset = u64::from(index).checked_mul(size)?;
        let network = u64::from(self.network) + offset;
        let candidate = Cidr {
            network: u32::try_from(network).ok()?,
            prefix,
        };
        self.contains(candidate).then_some(candidate)
    }

    /// The `n`-th address of this network (0 is the network address), if it is inside.
    pub fn host(self, n: u32) -> Option<Ipv4Addr> {
        let ip = self.network.checked_add(n)?;
        (ip <= self.broadcast()).then(|| Ipv4Addr::from(ip))
    }

    /// Whether `other` lies entirely inside this network.
    pub fn contains(self, other: Cidr) -> bool {
        other.prefix >= self.prefix && (other.network & self.mask()) == self.network
    }

    /// Whether the two networks share an address.
    pub fn overlaps(self, other: Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// Whether `ip` is in this network.
    pub fn contains_ip(self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == self.network
    }

    /// Whether `ip` is one of the five addresses AWS reserves in a subnet: the network
    /// address, the next three (router, DNS, future use) and the broadcast address.
    pub fn is_aws_reserved(self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        (self.network..=self.network.saturating_add(3)).contains(&ip) || ip == self.broadcast()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not in CIDR notation (like 10.0.0.0/16)"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` in `{s}` is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("prefix length in `{s}` must be 0 to 32"))?;
        let cidr = Self {
            network: u32::from(addr),
            prefix,
        };
        let normalised = Self {
            network: cidr.network & cidr.mask(),
            prefix,
        };
        if normalised != cidr {
            return Err(format!(
                "`{s}` has host bits set: did you mean {normalised}?"
            ));
        }
        Ok(cidr)
    }
}

/// Check helper: a CIDR input, when known, must parse.
pub(crate) fn check_cidr(inputs: &Properties, key: &str, failures: &mut Vec<CheckFailure>) {
    if let Some(text) = known_str(inputs, key)
        && let Err(reason) = text.parse::<Cidr>()
    {
        failures.push(CheckFailure::new(key, reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parsing_rejects_what_aws_would_with_a_reason() {
        let cases = [
            (
                "10.0.0.0",
                "`10.0.0.0` is not in CIDR notation (like 10.0.0.0/16)",
            ),
            (
                "10.0.0/16",
                "`10.0.0` in `10.0.0/16` is not an IPv4 address",
            ),
            (
                "10.0.0.0/33",
                "prefix length in `10.0.0.0/33` must be 0 to 32",
            ),
            (
                "10.0.1.0/16",
                "`10.0.1.0/16` has host bits set: did you mean 10.0.0.0/16?",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(input.parse::<Cidr>().unwrap_err(), message, "{input}");
        }
        assert_eq!(c("10.0.0.0/16").to_string(), "10.0.0.0/16");
    }

    #[test]
    fn containment_overlap_and_reserved_addresses() {
        assert!(c("10.0.0.0/16").contains(c("10.0.1.0/24")));
        assert!(!c("10.0.0.0/16").contains(c("10.1.0.0/24")));
        assert!(c("10.0.0.0/23").overlaps(c("10.0.1.0/24")));
        assert!(!c("10.0.0.0/24").overlaps(c("10.0.1.0/24")));
        let subnet = c("10.0.1.0/24");
        for reserved in ["10.0.1.0", "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.255"] {
            assert!(
                subnet.is_aws_reserved(reserved.parse().unwrap()),
                "{reserved}"
            );
        }
        assert!(!subnet.is_aws_reserved("10.0.1.4".parse().unwrap()));
        assert!(subnet.contains_ip("10.0.1.10".parse().unwrap()));
        assert_eq!(c("10.0.0.0/16").subnet(24, 3), Some(c("10.0.3.0/24")));
        assert_eq!(c("10.0.0.0/23").subnet(24, 2), None);
        assert_eq!(c("10.0.0.0/16").subnet(8, 0), None);
        assert_eq!(subnet.host(10), Some("10.0.1.10".parse().unwrap()));
        assert_eq!(subnet.host(256), None);
        assert!(!subnet.contains_ip("10.0.2.10".parse().unwrap()));
    }
}
