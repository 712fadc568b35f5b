//! The stack's WAF: a web ACL whose only rule allows the `waf.allow`
//! networks; everything else is blocked (403).

use std::net::IpAddr;

use crate::stack::Cidr;

#[derive(Debug, Clone)]
pub struct Allowlist(Vec<(IpAddr, u8)>);

impl Allowlist {
    /// The stack's networks (already validated and canonical).
    pub fn new(networks: &[Cidr]) -> anyhow::Result<Allowlist> {
        let parse = |cidr: &Cidr| -> anyhow::Result<(IpAddr, u8)> {
            let (address, prefix) = cidr.0.split_once('/').unwrap_or((&cidr.0, ""));
            let address: IpAddr = address.parse()?;
            let prefix = match prefix {
                "" if address.is_ipv4() => 32,
                "" => 128,
                prefix => prefix.parse()?,
            };
            Ok((address, prefix))
        };
        Ok(Allowlist(networks.iter().map(parse).collect::<anyhow::Result<_>>()?))
    }

    pub fn allows(&self, source: IpAddr) -> bool {
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(source),
            v4 => v4,
        };
        self.0.iter().any(|(network, prefix)| match (network, source) {
            (IpAddr::V4(network), IpAddr::V4(source)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
                u32::from(*network) & mask == u32::from(source) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(source)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
                u128::from(*network) & mask == u128::from(source) & mask
            }
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_their_addresses_only() {
        let list =
            Allowlist::new(&[Cidr("127.0.0.1/32".into()), Cidr("203.0.113.0/24".into()), Cidr("2001:db8::/32".into())])
                .expect("valid");
        for allowed in ["127.0.0.1", "203.0.113.77", "2001:db8::1", "::ffff:127.0.0.1"] {
            assert!(list.allows(allowed.parse().expect("ip")), "{allowed}");
        }
        for refused in ["127.0.0.2", "203.0.114.1", "2001:db9::1", "::1"] {
            assert!(!list.allows(refused.parse().expect("ip")), "{refused}");
        }
        assert!(Allowlist::new(&[Cidr("0.0.0.0/0".into())]).expect("valid").allows("10.1.2.3".parse().expect("ip")));
    }
}
