//! Manage tokens: the credential in an attendee's self-service links (`/manage/{token}`,
//! `/b/{token}.ics`, `/v1/manage/{token}/…`).
//!
//! A token is never stored. It is `base64url-no-pad(booking_id ‖ tag)`, where `tag` is the first
//! 16 bytes of `HMAC-SHA256(key, booking_id ‖ generation as 8 bytes big-endian)`: 32 bytes, always
//! 43 characters. Carrying the booking id lets the server find the booking (and its current
//! `token_generation`) before checking the MAC; bumping the generation invalidates every link
//! issued before it. The 128-bit tag is what PRODUCT.md asks for, and it is compared in constant
//! time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the booking id at the front of a decoded token.
const ID_LEN: usize = 16;
/// Bytes of the truncated MAC after the id.
const TAG_LEN: usize = 16;
/// Length of a token in base64url characters without padding: `ceil(32 * 4 / 3)`.
const TOKEN_CHARS: usize = 43;
/// Domain separation for the key derivation, so the server secret's other uses never share a key.
const DERIVE_LABEL: &[u8] = b"slotd manage-token v1";

/// The secret key that signs and checks manage tokens.
#[derive(Clone)]
pub struct ManageTokenKey {
    key: [u8; 32],
}

impl ManageTokenKey {
    /// Derives the token key from the server secret (any bytes; HMAC-SHA256(secret, "slotd manage-token v1")),
    /// so the raw secret is never used directly.
    pub fn derive(server_secret: &[u8]) -> ManageTokenKey {
        let mut mac = new_mac(server_secret);
        mac.update(DERIVE_LABEL);
        ManageTokenKey { key: mac.finalize().into_bytes().into() }
    }

    /// The token for a booking at a token generation.
    pub fn token(&self, booking_id: [u8; 16], generation: u64) -> String {
        let full = self.mac(booking_id, generation).finalize().into_bytes();
        let mut raw = [0u8; ID_LEN + TAG_LEN];
        raw[..ID_LEN].copy_from_slice(&booking_id);
        raw[ID_LEN..].copy_from_slice(&full[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a token against the booking's current generation, in constant time.
    pub fn verify(&self, token: &str, booking_id: [u8; 16], generation: u64) -> bool {
        let Some(raw) = decode(token) else {
            return false;
        };
        // The id is public (it is in the clear in the token), so an ordinary comparison is fine;
        // only the tag needs constant time.
        if raw[..ID_LEN] != booking_id {
            return false;
        }
        self.mac(booking_id, generation).verify_truncated_left(&raw[ID_LEN..]).is_ok()
    }

    /// The keyed MAC over a booking id and generation, ready to finalize or verify.
    fn mac(&self, booking_id: [u8; 16], generation: u64) -> HmacSha256 {
        let mut mac = new_mac(&self.key);
        mac.update(&booking_id);
        mac.update(&generation.to_be_bytes());
        mac
    }
}

impl fmt::Debug for ManageTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key must never reach logs, so Debug shows only that one exists.
        f.write_str("ManageTokenKey(<redacted>)")
    }
}

/// The booking id a well-formed token names (None for anything that is not 43 base64url chars decoding to
/// 32 bytes). Does not verify the MAC.
pub fn booking_id_of(token: &str) -> Option<[u8; 16]> {
    let raw = decode(token)?;
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&raw[..ID_LEN]);
    Some(id)
}

/// Decodes a token to its 32 raw bytes, or `None` if it is not exactly 43 base64url characters.
fn decode(token: &str) -> Option<[u8; ID_LEN + TAG_LEN]> {
    // Checking the length first bounds the work done on hostile input and rejects padded forms.
    if token.len() != TOKEN_CHARS {
        return None;
    }
    let mut raw = [0u8; ID_LEN + TAG_LEN];
    // The NO_PAD engine rejects `=` and non-zero trailing bits, so each id and tag has exactly one
    // accepted spelling.
    match URL_SAFE_NO_PAD.decode_slice(token, &mut raw) {
        Ok(n) if n == raw.len() => Some(raw),
        _ => None,
    }
}

/// An HMAC-SHA256 instance keyed with `key`.
fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC hashes or pads keys of any length, so this cannot fail.
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    fn key() -> ManageTokenKey {
        ManageTokenKey::derive(b"test secret")
    }

    #[test]
    fn known_answer() {
        // Computed independently with Python's hmac/hashlib/base64 from the formula in the
        // module docs; pins the wire format so a refactor cannot silently break issued links.
        assert_eq!(key().token(ID, 7), "AAECAwQFBgcICQoLDA0OD5ZsfzDTCeLsdQydAj0nVOw");
    }

    #[test]
    fn round_trip() {
        let key = key();
        for generation in [0, 1, 7, u64::MAX] {
            let token = key.token(ID, generation);
            assert!(key.verify(&token, ID, generation));
            assert_eq!(booking_id_of(&token), Some(ID));
        }
    }

    #[test]
    fn token_shape() {
        let token = key().token([0xff; 16], 42);
        assert_eq!(token.len(), 43);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{token}");
    }

    #[test]
    fn other_generation_fails() {
        let key = key();
        let token = key.token(ID, 3);
        assert!(!key.verify(&token, ID, 2));
        assert!(!key.verify(&token, ID, 4));
    }

    #[test]
    fn other_key_fails() {
        let token = key().token(ID, 1);
        assert!(!ManageTokenKey::derive(b"another secret").verify(&token, ID, 1));
    }

    #[test]
    fn other_booking_fails() {
        let key = key();
        let mut other = ID;
        other[15] ^= 1;
        let token = key.token(ID, 1);
        assert!(!key.verify(&token, other, 1));
        // A token whose id is swapped for another booking's, keeping the tag, fails too.
        let mut raw = [0u8; 32];
        assert_eq!(URL_SAFE_NO_PAD.decode_slice(&token, &mut raw), Ok(32));
        raw[..16].copy_from_slice(&other);
        let forged = URL_SAFE_NO_PAD.encode(raw);
        assert!(!key.verify(&forged, other, 1));
        assert!(!key.verify(&forged, ID, 1));
    }

    #[test]
    fn any_tampered_character_fails() {
        let key = key();
        let token = key.token(ID, 9);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).expect("ascii");
            assert!(!key.verify(&tampered, ID, 9), "tampered at {i}: {tampered}");
        }
    }

    #[test]
    fn garbage_is_rejected() {
        let key = key();
        let token = key.token(ID, 1);
        let garbage = [
            String::new(),
            token[..42].to_owned(),
            format!("{token}A"),
            format!("{token}="),
            format!("{}=", &token[..42]),
            format!("{}+", &token[..42]),
            format!("{}/", &token[..42]),
            format!("{}.", &token[..42]),
            format!("{}é", &token[..41]),
            " ".repeat(43),
            "!".repeat(43),
        ];
        for g in &garbage {
            assert_eq!(booking_id_of(g), None, "{g:?}");
            assert!(!key.verify(g, ID, 1), "{g:?}");
        }
    }

    #[test]
    fn non_canonical_trailing_bits_are_rejected() {
        // The last character carries 4 data bits and 2 unused ones; setting the unused bits gives
        // a second spelling of the same bytes, which must not be accepted.
        let key = key();
        let token = key.token(ID, 1);
        let last = token.as_bytes()[42];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.iter().position(|&c| c == last).expect("alphabet");
        let sibling = alphabet[index ^ 1] as char;
        let variant = format!("{}{sibling}", &token[..42]);
        assert_eq!(booking_id_of(&variant), None);
        assert!(!key.verify(&variant, ID, 1));
    }

    #[test]
    fn debug_hides_the_key() {
        let key = ManageTokenKey { key: [0xab; 32] };
        let shown = format!("{key:?}");
        assert!(!shown.to_lowercase().contains("ab, ") && !shown.contains("171"), "{shown}");
        assert_eq!(shown, "ManageTokenKey(<redacted>)");
    }
}
