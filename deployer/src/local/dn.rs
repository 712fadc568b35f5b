//! Distinguished names as RFC 4514 strings (`CN=client-a,O=Example`): the
//! last RDN first, `,` between RDNs, `+` inside one, and every character
//! that could read as structure escaped. Without the escaping, a value such
//! as `O="Example, CN=a"` renders exactly like the two attributes
//! `O=Example` and `CN=a`, and an allowlist entry matches both certificates.

use x509_parser::der_parser::asn1_rs::ToDer as _;
use x509_parser::x509::X509Name;

/// RFC 4514 §3's short names; any other type is written as its dotted OID.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

pub fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            let attributes: Vec<String> = rdn
                .iter()
                .map(|attribute| {
                    let oid = attribute.attr_type().to_id_string();
                    let short = SHORT_NAMES.iter().find(|(id, _)| *id == oid).map(|(_, short)| *short);
                    match (short, attribute.as_str()) {
                        (Some(short), Ok(value)) => format!("{short}={}", escape(value)),
                        // §2.4: a value with no string form is `#` and the hex of its BER encoding.
                        (short, _) => {
                            let der = attribute.attr_value().to_der_vec().unwrap_or_default();
                            format!("{}=#{}", short.map(str::to_owned).unwrap_or(oid), hex(&der))
                        }
                    }
                })
                .collect();
            attributes.join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// RFC 4514 §2.4: `"+,;<>\` anywhere, `#` or a space first, a space last, NUL.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => escaped.push('\\'),
            '#' | ' ' if i == 0 => escaped.push('\\'),
            ' ' if i == last => escaped.push('\\'),
            '\0' => {
                escaped.push_str("\\00");
                continue;
            }
            _ => {}
        }
        escaped.push(c);
    }
    escaped
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
