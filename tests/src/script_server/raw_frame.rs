//! Hand-built server-to-client frames (unmasked), for `Step::SendRaw`: the malformed frames a
//! correct WebSocket library refuses to produce (RFC 6455, section 5.2).

/// FIN bit: the frame is the last of its message.
pub const FIN: u8 = 0x80;
/// RSV1 bit: meaningful only with a negotiated extension.
pub const RSV1: u8 = 0x40;
/// Opcode of a continuation frame.
pub const OPCODE_CONTINUATION: u8 = 0x0;
/// Opcode of a text frame.
pub const OPCODE_TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub const OPCODE_BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub const OPCODE_CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const OPCODE_PING: u8 = 0x9;

/// The header of an unmasked frame. `first_byte` holds the FIN, RSV and opcode bits, e.g.
/// `FIN | OPCODE_TEXT`.
pub fn header(first_byte: u8, payload_len: u64) -> Vec<u8> {
    let mut header = vec![first_byte];
    match payload_len {
        0..=125 => header.push(payload_len as u8),
        126..=0xFFFF => {
            header.push(126);
            header.extend_from_slice(&(payload_len as u16).to_be_bytes());
        }
        _ => {
            header.push(127);
            header.extend_from_slice(&payload_len.to_be_bytes());
        }
    }
    header
}

/// A whole unmasked frame.
pub fn frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = header(first_byte, payload.len() as u64);
    frame.extend_from_slice(payload);
    frame
}

/// A final text frame whose payload is not UTF-8 (the client must fail with 1007).
pub fn invalid_utf8_text() -> Vec<u8> {
    frame(FIN | OPCODE_TEXT, &[b'o', b'k', 0xC3, 0x28, 0xFF])
}

/// A final text frame with RSV1 set although no extension was negotiated (the client must fail
/// with 1002).
pub fn reserved_bits_text() -> Vec<u8> {
    frame(FIN | RSV1 | OPCODE_TEXT, b"reserved")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_shortest_encoding() {
        assert_eq!(header(FIN | OPCODE_TEXT, 5), vec![0x81, 5]);
        assert_eq!(
            header(FIN | OPCODE_BINARY, 300),
            vec![0x82, 126, 0x01, 0x2C]
        );
        assert_eq!(
            header(FIN | OPCODE_TEXT, 70_000),
            vec![0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70]
        );
        assert_eq!(frame(FIN | OPCODE_PING, b"hi"), vec![0x89, 2, b'h', b'i']);
    }
}
