//! Bolt's message framing: a message is sent as chunks (a big-endian `u16` size and that
//! many bytes) ended by an empty chunk (`00 00`).
//!
//! Writing and reading follow the specification, with one reader for FalkorDB, which
//! frames messages longer than 65,535 bytes wrongly (see [`read_falkordb_message`]).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::packstream::{self, DecodeError, Quirks};

/// The largest chunk the format allows.
pub const MAX_CHUNK: usize = 0xFFFF;

/// Appends `body` framed as one Bolt message (chunks of at most [`MAX_CHUNK`] bytes and the
/// end marker) to `out`.
pub fn frame(body: &[u8], out: &mut Vec<u8>) {
    for chunk in body.chunks(MAX_CHUNK) {
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&[0, 0]);
}

/// Writes `body` as one framed message and flushes.
pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> std::io::Result<()> {
    let mut framed = Vec::with_capacity(body.len() + 4 + 2 * (body.len() / MAX_CHUNK));
    frame(body, &mut framed);
    w.write_all(&framed).await?;
    w.flush().await
}

/// Reads one message as the specification frames it; `None` when the peer closed the
/// connection between messages. Empty chunks between messages (NOOPs) are skipped.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let Some(mut size) = first_chunk_size(r).await? else {
        return Ok(None);
    };
    let mut body = Vec::new();
    while size > 0 {
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).await?;
        size = usize::from(r.read_u16().await?);
    }
    Ok(Some(body))
}

/// Reads one message from FalkorDB; `None` when it closed the connection between messages.
///
/// FalkorDB 4.16 writes every message as a single chunk and puts the message's length in
/// the chunk header truncated to 16 bits: a 70,008-byte record arrives with a header
/// saying 4,472. So when the bytes a header announces end in the middle of a PackStream
/// value, the header must have wrapped, and another 65,536 bytes belong to the same
/// chunk. (This reading is for FalkorDB only: a server that splits long messages into
/// chunks as the specification says would be misread.)
pub async fn read_falkordb_message<R: AsyncRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<Vec<u8>>> {
    let Some(mut size) = first_chunk_size(r).await? else {
        return Ok(None);
    };
    let mut body = Vec::new();
    while size > 0 {
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).await?;
        match complete(&body) {
            Ok(true) => size = usize::from(r.read_u16().await?),
            // The header wrapped: the chunk goes on for another 2^16 bytes.
            Ok(false) => size = MAX_CHUNK + 1,
            Err(why) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("FalkorDB sent a message that is not PackStream: {why}"),
                ))
            }
        }
    }
    Ok(Some(body))
}

/// Whether `body` holds at least one whole PackStream value (`Ok(false)`: it is cut short).
fn complete(body: &[u8]) -> Result<bool, DecodeError> {
    // The quirk only ever makes a value one byte longer: either decoding tells whether
    // the value is cut short.
    match packstream::decode_prefix(body, Quirks::default()) {
        Ok(_) => Ok(true),
        Err(DecodeError::Incomplete) => Ok(false),
        Err(invalid) => Err(invalid),
    }
}

async fn first_chunk_size<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<usize>> {
    loop {
        let mut header = [0u8; 2];
        match r.read_exact(&mut header[..1]).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        r.read_exact(&mut header[1..]).await?;
        let size = usize::from(u16::from_be_bytes(header));
        if size > 0 {
            return Ok(Some(size));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packstream::{encode, Value};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    }

    #[test]
    fn a_long_message_is_split_into_chunks_and_read_back() {
        let body: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut framed = vec![0, 0]; // a NOOP first
        frame(&body, &mut framed);
        frame(b"next", &mut framed);
        assert_eq!(framed[2..4], [0xFF, 0xFF]);
        runtime().block_on(async {
            let mut reader = &framed[..];
            assert_eq!(read_message(&mut reader).await.ok().flatten(), Some(body));
            assert_eq!(
                read_message(&mut reader).await.ok().flatten(),
                Some(b"next".to_vec())
            );
            assert_eq!(read_message(&mut reader).await.ok(), Some(None));
        });
    }

    #[test]
    fn falkordb_framing_with_a_wrapped_header_is_read_whole() {
        let mut body = Vec::new();
        encode(&Value::string("x".repeat(70_000)), &mut body);
        let mut wire = Vec::new();
        // As FalkorDB writes it: one chunk, its size truncated to 16 bits.
        wire.extend_from_slice(&((body.len() % 65_536) as u16).to_be_bytes());
        wire.extend_from_slice(&body);
        wire.extend_from_slice(&[0, 0]);
        // A small message after it.
        let mut small = Vec::new();
        encode(&Value::Int(7), &mut small);
        frame(&small, &mut wire);
        runtime().block_on(async {
            let mut reader = &wire[..];
            assert_eq!(
                read_falkordb_message(&mut reader).await.ok().flatten(),
                Some(body.clone())
            );
            assert_eq!(
                read_falkordb_message(&mut reader).await.ok().flatten(),
                Some(small)
            );
            assert_eq!(read_falkordb_message(&mut reader).await.ok(), Some(None));
        });
    }
}
