//! Application messages, and the buffers that carry them.
//!
//! With the `bytes` feature (the native driver) a message shares the buffer the WebSocket
//! engine decoded it into: receiving one copies nothing. Without it (the browser build,
//! where every byte of code counts) a message owns a `String` or `Vec<u8>`. The API is
//! the same either way.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Deref;

#[cfg(feature = "bytes")]
use bytes::Bytes;

/// One WebSocket message, text or binary.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Payload {
    /// A text message.
    Text(Text),
    /// A binary message.
    Binary(Binary),
}

impl Payload {
    /// The size in bytes, as counted against the queue's byte bound.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the message has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Binary(_) => None,
        }
    }

    /// The message's bytes: UTF-8 for a text message.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Self {
        Self::Text(text.into())
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(bytes.into())
    }
}

/// The text of a text message: UTF-8, read as a `&str`. Cloning it shares the buffer
/// with the `bytes` feature.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(TextBuf);

#[cfg(feature = "bytes")]
type TextBuf = Bytes;
#[cfg(not(feature = "bytes"))]
type TextBuf = String;

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        #[cfg(feature = "bytes")]
        {
            // SAFETY: every constructor of `Text` takes a `str`, a `String`, or bytes
            // checked as UTF-8 (or, in `from_utf8_unchecked`, promised to be), and the
            // buffer is never changed afterwards.
            #[allow(unsafe_code)]
            unsafe {
                core::str::from_utf8_unchecked(&self.0)
            }
        }
        #[cfg(not(feature = "bytes"))]
        {
            &self.0
        }
    }
}

#[cfg(feature = "bytes")]
impl Text {
    /// Text from a shared buffer, checked as UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, core::str::Utf8Error> {
        core::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }

    /// Text from a shared buffer already known to be UTF-8: a WebSocket engine validates
    /// every text message, so checking again would cost a second pass for nothing.
    ///
    /// # Safety
    ///
    /// `bytes` must be valid UTF-8.
    #[allow(unsafe_code)]
    pub unsafe fn from_utf8_unchecked(bytes: Bytes) -> Self {
        debug_assert!(core::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// The shared buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        #[cfg(feature = "bytes")]
        {
            Self(Bytes::from(text))
        }
        #[cfg(not(feature = "bytes"))]
        {
            Self(text)
        }
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        #[cfg(feature = "bytes")]
        {
            Self(Bytes::copy_from_slice(text.as_bytes()))
        }
        #[cfg(not(feature = "bytes"))]
        {
            Self(text.into())
        }
    }
}

impl From<Text> for String {
    fn from(text: Text) -> Self {
        #[cfg(feature = "bytes")]
        {
            text.as_str().into()
        }
        #[cfg(not(feature = "bytes"))]
        {
            text.0
        }
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

/// The bytes of a binary message. Cloning it shares the buffer with the `bytes` feature.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Binary(BinaryBuf);

#[cfg(feature = "bytes")]
type BinaryBuf = Bytes;
#[cfg(not(feature = "bytes"))]
type BinaryBuf = Vec<u8>;

impl Binary {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(feature = "bytes")]
impl Binary {
    /// The shared buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

#[cfg(feature = "bytes")]
impl From<Bytes> for Binary {
    fn from(bytes: Bytes) -> Self {
        Self(bytes)
    }
}

impl Deref for Binary {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Binary {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl From<Vec<u8>> for Binary {
    fn from(bytes: Vec<u8>) -> Self {
        #[cfg(feature = "bytes")]
        {
            Self(Bytes::from(bytes))
        }
        #[cfg(not(feature = "bytes"))]
        {
            Self(bytes)
        }
    }
}

impl From<&[u8]> for Binary {
    fn from(bytes: &[u8]) -> Self {
        #[cfg(feature = "bytes")]
        {
            Self(Bytes::copy_from_slice(bytes))
        }
        #[cfg(not(feature = "bytes"))]
        {
            Self(bytes.into())
        }
    }
}

impl From<Binary> for Vec<u8> {
    fn from(bytes: Binary) -> Self {
        #[cfg(feature = "bytes")]
        {
            bytes.0.into()
        }
        #[cfg(not(feature = "bytes"))]
        {
            bytes.0
        }
    }
}

impl PartialEq<[u8]> for Binary {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<u8>> for Binary {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::borrow::ToOwned;

    #[test]
    fn text_and_binary_read_back_what_they_were_made_of() {
        let text = Payload::from("héllo");
        assert_eq!(text.as_text(), Some("héllo"));
        assert_eq!(text.len(), "héllo".len());
        let binary = Payload::from(alloc::vec![1, 2, 3]);
        assert_eq!(binary.as_bytes(), [1, 2, 3]);
        assert_eq!(binary.as_text(), None);
        let Payload::Text(inner) = text else {
            unreachable!("made from a str")
        };
        assert_eq!(String::from(inner), "héllo".to_owned());
    }

    #[cfg(feature = "bytes")]
    #[test]
    fn text_from_bytes_is_checked_and_shares_the_buffer() {
        let shared = Bytes::from_static(b"{\"seq\":1}");
        let text = Text::from_utf8(shared.clone()).expect("valid UTF-8");
        assert_eq!(text.as_str().as_ptr(), shared.as_ptr());
        assert!(Text::from_utf8(Bytes::from_static(&[0xff, 0xfe])).is_err());
    }
}
