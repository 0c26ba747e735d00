//! The PROXY protocol header (HAProxy's, versions 1 and 2) that a relay may send first on
//! its upstream TCP connection, so that the upstream server sees the client's address and
//! not the gateway's. Pure: the header's bytes for two addresses.
//!
//! - **Version 1** is a text line: `PROXY TCP4 <client> <server> <client port> <server
//!   port>\r\n` (`TCP6` for IPv6), at most 107 bytes.
//! - **Version 2** is binary: a 12-byte signature, the version and command (`0x21`: version
//!   2, PROXY), the family and transport (`0x11` TCP over IPv4, `0x21` TCP over IPv6), the
//!   length of what follows (big-endian), then both addresses and both ports.
//!
//! When one address is IPv4 and the other IPv6, the IPv4 one is written IPv4-mapped, so that
//! both are of the one family the header allows.

use std::net::{IpAddr, SocketAddr};

/// Which version of the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// The text line.
    V1,
    /// The binary header.
    V2,
}

/// The signature that starts every version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Appends the header telling that the connection of `client` reached the gateway at
/// `server` (the address the client connected to).
pub fn write(version: Version, client: SocketAddr, server: SocketAddr, out: &mut Vec<u8>) {
    let (client_ip, server_ip) = same_family(client.ip(), server.ip());
    match version {
        Version::V1 => {
            let family = if client_ip.is_ipv4() { "TCP4" } else { "TCP6" };
            let line = format!(
                "PROXY {family} {client_ip} {server_ip} {} {}\r\n",
                client.port(),
                server.port()
            );
            out.extend_from_slice(line.as_bytes());
        }
        Version::V2 => {
            out.extend_from_slice(&V2_SIGNATURE);
            out.push(0x21);
            match (client_ip, server_ip) {
                (IpAddr::V4(c), IpAddr::V4(s)) => {
                    out.push(0x11);
                    out.extend_from_slice(&12u16.to_be_bytes());
                    out.extend_from_slice(&c.octets());
                    out.extend_from_slice(&s.octets());
                }
                (c, s) => {
                    out.push(0x21);
                    out.extend_from_slice(&36u16.to_be_bytes());
                    out.extend_from_slice(&v6(c).octets());
                    out.extend_from_slice(&v6(s).octets());
                }
            }
            out.extend_from_slice(&client.port().to_be_bytes());
            out.extend_from_slice(&server.port().to_be_bytes());
        }
    }
}

/// Both addresses in one family: IPv4 where both are (IPv4-mapped IPv6 ones included),
/// else IPv6.
fn same_family(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    match (a.to_canonical(), b.to_canonical()) {
        (a @ IpAddr::V4(_), b @ IpAddr::V4(_)) => (a, b),
        (a, b) => (IpAddr::V6(v6(a)), IpAddr::V6(v6(b))),
    }
}

/// `ip` as IPv6 (IPv4-mapped when it is IPv4).
fn v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: Version, client: &str, server: &str) -> Vec<u8> {
        let mut out = b"before".to_vec();
        write(
            version,
            client.parse().unwrap(),
            server.parse().unwrap(),
            &mut out,
        );
        out.split_off(6)
    }

    #[test]
    fn version_1_is_the_text_line() {
        assert_eq!(
            header(Version::V1, "192.0.2.7:51000", "198.51.100.1:8080"),
            b"PROXY TCP4 192.0.2.7 198.51.100.1 51000 8080\r\n"
        );
        assert_eq!(
            header(Version::V1, "[2001:db8::7]:51000", "[2001:db8::1]:443"),
            b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n"
        );
        // An IPv4 client on an IPv6 listener: both IPv6, the client IPv4-mapped.
        assert_eq!(
            header(Version::V1, "192.0.2.7:1", "[2001:db8::1]:2"),
            b"PROXY TCP6 ::ffff:192.0.2.7 2001:db8::1 1 2\r\n"
        );
        // An IPv4-mapped client on a dual-stack listener bound to IPv4: both IPv4.
        assert_eq!(
            header(Version::V1, "[::ffff:192.0.2.7]:1", "127.0.0.1:2"),
            b"PROXY TCP4 192.0.2.7 127.0.0.1 1 2\r\n"
        );
    }

    #[test]
    fn the_longest_version_1_line_fits_the_protocols_107_bytes() {
        let ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let line = header(
            Version::V1,
            &format!("[{ip}]:65535"),
            &format!("[{ip}]:65535"),
        );
        assert_eq!(line.len(), 104);
        assert!(line.len() <= 107);
    }

    #[test]
    fn version_2_is_the_binary_header() {
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x11, 0, 12, 192, 0, 2, 7, 198, 51, 100, 1]);
        want.extend_from_slice(&[0xc7, 0x38, 0x1f, 0x90]);
        assert_eq!(
            header(Version::V2, "192.0.2.7:51000", "198.51.100.1:8080"),
            want
        );

        let v6 = header(Version::V2, "[2001:db8::7]:1", "192.0.2.1:2");
        assert_eq!(
            &v6[..16],
            &[&V2_SIGNATURE[..], &[0x21, 0x21, 0, 36]].concat()[..]
        );
        assert_eq!(v6.len(), 16 + 36);
        let client: [u8; 16] = v6[16..32].try_into().unwrap();
        let server: [u8; 16] = v6[32..48].try_into().unwrap();
        assert_eq!(
            std::net::Ipv6Addr::from(client),
            "2001:db8::7".parse::<std::net::Ipv6Addr>().unwrap()
        );
        assert_eq!(
            std::net::Ipv6Addr::from(server).to_ipv4_mapped(),
            Some([192, 0, 2, 1].into())
        );
        assert_eq!(&v6[48..], &[0, 1, 0, 2]);
    }
}
