//! Which process is at the other end of a loopback TCP connection, so the
//! local Lambda Runtime API serves only the function it started. Lambda's
//! Runtime API is reachable from the function alone; on 127.0.0.1 every
//! local user could otherwise take the events (tokens, certificates) or post
//! an Allow for them.
//!
//! Linux only, through `/proc`: the connection's socket inode from
//! `/proc/net/tcp`, then whether the process holds that socket among its file
//! descriptors. Elsewhere every connection is accepted, and `deployer local`
//! says so at start.

use std::net::SocketAddr;

/// Whether this platform can tell (see the module's comment).
pub const CHECKED: bool = cfg!(target_os = "linux");

/// Whether the connection from `peer` to our `local` address belongs to
/// process `pid`.
#[cfg(target_os = "linux")]
pub fn belongs_to(pid: u32, peer: SocketAddr, local: SocketAddr) -> bool {
    let Some(inode) = socket_inode(peer, local) else {
        return false;
    };
    let socket = format!("socket:[{inode}]");
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    descriptors
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == socket.as_str()))
}

#[cfg(not(target_os = "linux"))]
pub fn belongs_to(_pid: u32, _peer: SocketAddr, _local: SocketAddr) -> bool {
    true
}

/// The inode of the client's socket: the `/proc/net/tcp` line whose local
/// address is `peer` and remote address `local`.
#[cfg(target_os = "linux")]
fn socket_inode(peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    let (SocketAddr::V4(peer), SocketAddr::V4(local)) = (peer, local) else {
        return None;
    };
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let encode = |address: std::net::SocketAddrV4| {
        // The kernel prints the address as a native-endian u32 and the port as a number.
        format!("{:08X}:{:04X}", u32::from_ne_bytes(address.ip().octets()), address.port())
    };
    let (from, to) = (encode(peer), encode(local));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&from.as_str()) && fields.get(2) == Some(&to.as_str()))
            .then(|| fields.get(9)?.parse().ok())
            .flatten()
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_of_this_process_is_found_and_no_other_pid_owns_it() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let local = listener.local_addr().expect("address");
        let _client = tokio::net::TcpStream::connect(local).await.expect("connect");
        let (_server, peer) = listener.accept().await.expect("accept");
        assert!(belongs_to(std::process::id(), peer, local));
        assert!(!belongs_to(1, peer, local), "pid 1 does not hold this socket");
    }
}
