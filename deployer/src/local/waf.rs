//! The stack's WAF: a web ACL whose only rule allows the `waf.allow`
//! networks; everything else is blocked (403).

use std::net::IpAddr;

use crate::stack::Cidr;

#[derive(Debug, Clone)]
pub struct Allowlist(Vec<Cidr>);

impl Allowlist {
    /// The stack's networks (validated and canonical).
    pub fn new(networks: &[Cidr]) -> Allowlist {
        Allowlist(networks.to_vec())
    }

    pub fn allows(&self, source: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::parse_cidr;

    #[test]
    fn networks_contain_their_addresses_only() {
        let networks: Vec<Cidr> =
            ["127.0.0.1/32", "203.0.113.0/24", "2001:db8::/32"].iter().map(|n| parse_cidr(n).expect("valid")).collect();
        let list = Allowlist::new(&networks);
        for allowed in ["127.0.0.1", "203.0.113.77", "2001:db8::1", "::ffff:127.0.0.1"] {
            assert!(list.allows(allowed.parse().expect("ip")), "{allowed}");
        }
        for refused in ["127.0.0.2", "203.0.114.1", "2001:db9::1", "::1"] {
            assert!(!list.allows(refused.parse().expect("ip")), "{refused}");
        }
    }
}
