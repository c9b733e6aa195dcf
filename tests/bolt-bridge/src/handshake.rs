//! The Bolt handshake: the magic preamble, four version proposals, and the one the server
//! picks. The bridge answers clients as a Bolt 4.0–4.4 server and asks FalkorDB for
//! 5.1–5.7.

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};

/// The four bytes every Bolt connection starts with.
pub const MAGIC: [u8; 4] = [0x60, 0x60, 0xB0, 0x17];

/// The highest Bolt 4 minor version the bridge speaks to clients.
pub const CLIENT_MAX_MINOR: u8 = 4;

/// The Bolt 5 versions asked of FalkorDB: 5.7 down to 5.1 (5.0 has no LOGON message,
/// which the bridge relies on; FalkorDB speaks 5.1–5.7).
const UPSTREAM_PROPOSAL: [u8; 4] = [0, 6, 7, 5];

/// A Bolt protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BoltVersion {
    /// The major version.
    pub major: u8,
    /// The minor version.
    pub minor: u8,
}

impl fmt::Display for BoltVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Picks the version to speak with a client from its four proposals (in the client's
/// order of preference): the first that covers a Bolt 4.0–4.4 version, at its highest.
///
/// A proposal is four bytes: unused, how many minor versions below `minor` it also
/// accepts (Bolt 4.3+), `minor`, `major`.
pub fn choose_client_version(proposals: &[u8; 16]) -> Option<BoltVersion> {
    proposals.chunks_exact(4).find_map(|p| {
        let (range, minor, major) = (p[1], p[2], p[3]);
        if major != 4 {
            return None;
        }
        let chosen = minor.min(CLIENT_MAX_MINOR);
        (chosen >= minor.saturating_sub(range)).then_some(BoltVersion {
            major: 4,
            minor: chosen,
        })
    })
}

/// Serves a client's handshake: reads its preamble and proposals and answers with the
/// chosen version. `Ok(None)` when it proposed nothing the bridge speaks (it has then
/// been told so, by a zero version, and the connection should be closed).
pub async fn accept_client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
) -> Result<Option<BoltVersion>> {
    let mut preamble = [0u8; 20];
    stream
        .read_exact(&mut preamble)
        .await
        .map_err(|e| Error::io("reading a client's handshake", e))?;
    if preamble[..4] != MAGIC {
        return Err(Error::protocol(
            "the client did not start with the Bolt preamble",
        ));
    }
    let mut proposals = [0u8; 16];
    proposals.copy_from_slice(&preamble[4..]);
    let chosen = choose_client_version(&proposals);
    let answer = chosen.map_or([0; 4], |v| [0, 0, v.minor, v.major]);
    stream
        .write_all(&answer)
        .await
        .map_err(|e| Error::io("answering a client's handshake", e))?;
    stream
        .flush()
        .await
        .map_err(|e| Error::io("answering a client's handshake", e))?;
    Ok(chosen)
}

/// Runs the handshake with FalkorDB and returns the version it chose (5.1 or later).
pub async fn connect_upstream<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
) -> Result<BoltVersion> {
    let mut hello = Vec::with_capacity(20);
    hello.extend_from_slice(&MAGIC);
    hello.extend_from_slice(&UPSTREAM_PROPOSAL);
    hello.extend_from_slice(&[0; 12]);
    stream
        .write_all(&hello)
        .await
        .map_err(|e| Error::io("sending the handshake to FalkorDB", e))?;
    stream
        .flush()
        .await
        .map_err(|e| Error::io("sending the handshake to FalkorDB", e))?;
    let mut answer = [0u8; 4];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(|e| Error::io("reading FalkorDB's handshake answer", e))?;
    let version = BoltVersion {
        major: answer[3],
        minor: answer[2],
    };
    if version.major != 5 || version.minor < 1 {
        return Err(Error::protocol(format!(
            "FalkorDB answered the handshake with version {version} (bytes {answer:02X?}); \
             the bridge needs Bolt 5.1 or later"
        )));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposals(list: [[u8; 4]; 4]) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, p) in list.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(p);
        }
        out
    }

    #[test]
    fn neo4rs_proposals_get_bolt_4_1() {
        // neo4rs 0.8 proposes 4.1, then 4.0.
        let p = proposals([[0, 0, 1, 4], [0, 0, 0, 4], [0; 4], [0; 4]]);
        assert_eq!(
            choose_client_version(&p),
            Some(BoltVersion { major: 4, minor: 1 })
        );
    }

    #[test]
    fn ranges_and_newer_versions_are_understood() {
        // 5.0 first (not spoken), then 4.4 down to 4.2.
        let p = proposals([[0, 0, 0, 5], [0, 2, 4, 4], [0; 4], [0; 4]]);
        assert_eq!(
            choose_client_version(&p),
            Some(BoltVersion { major: 4, minor: 4 })
        );
        // 4.6 down to 4.5 does not reach 4.4.
        let p = proposals([[0, 1, 6, 4], [0; 4], [0; 4], [0; 4]]);
        assert_eq!(choose_client_version(&p), None);
        // 4.6 down to 4.2 does.
        let p = proposals([[0, 4, 6, 4], [0; 4], [0; 4], [0; 4]]);
        assert_eq!(
            choose_client_version(&p),
            Some(BoltVersion { major: 4, minor: 4 })
        );
        let p = proposals([[0, 0, 3, 3], [0; 4], [0; 4], [0; 4]]);
        assert_eq!(choose_client_version(&p), None);
    }
}
