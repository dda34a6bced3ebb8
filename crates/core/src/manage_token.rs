//! Manage tokens: the credential in an attendee's self-service links (`/manage/{token}`,
//! `/b/{token}.ics`, `/v1/manage/{token}/…`).
//!
//! A token is never stored. It is `base64url-no-pad(booking_id ‖ tag)`, where `tag` is the first
//! 16 bytes of `HMAC-SHA256(key, booking_id ‖ generation as 8 bytes big-endian)`: 32 bytes, always
//! 43 characters. Carrying the booking id lets the server find the booking (and its current
//! `token_generation`) before checking the MAC; bumping the generation invalidates every link
//! issued before it. The 128-bit tag is what PRODUCT.md asks for, and it is compared in constant
//! time.
//!
//! A **short-lived** token (the `manage_url` an operator's portal hands a customer) also carries
//! its expiry: `base64url-no-pad(booking_id ‖ expires_at ‖ tag)`, with `expires_at` as unix seconds
//! (8 bytes big-endian) and `tag` the first 16 bytes of `HMAC-SHA256(key, booking_id ‖ generation ‖
//! "until" ‖ expires_at)`: 40 bytes, always 54 characters. The expiry is signed, so it cannot be
//! moved, and it is only looked at once the MAC verifies: an expired link is told apart from a
//! forged one. Rotating the booking's token generation kills short-lived links too.

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
/// Bytes of the expiry (unix seconds) in a short-lived token.
const EXPIRY_LEN: usize = 8;
/// Length of a short-lived token: `ceil(40 * 4 / 3)`.
const EXPIRING_TOKEN_CHARS: usize = 54;
/// Separates a short-lived token's MAC input from a permanent one's.
const EXPIRY_LABEL: &[u8] = b"until";
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

    /// A short-lived token for a booking at a token generation, valid until `expires_at_unix`
    /// (unix seconds).
    pub fn expiring_token(&self, booking_id: [u8; 16], generation: u64, expires_at_unix: i64) -> String {
        let full = self.expiring_mac(booking_id, generation, expires_at_unix).finalize().into_bytes();
        let mut raw = [0u8; ID_LEN + EXPIRY_LEN + TAG_LEN];
        raw[..ID_LEN].copy_from_slice(&booking_id);
        raw[ID_LEN..ID_LEN + EXPIRY_LEN].copy_from_slice(&expires_at_unix.to_be_bytes());
        raw[ID_LEN + EXPIRY_LEN..].copy_from_slice(&full[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a token of either form against the booking's current generation at `now_unix`:
    /// a short-lived token past its expiry is [`TokenCheck::Expired`] only if its MAC verifies.
    pub fn check(&self, token: &str, booking_id: [u8; 16], generation: u64, now_unix: i64) -> TokenCheck {
        if token.len() == TOKEN_CHARS {
            return if self.verify(token, booking_id, generation) { TokenCheck::Valid } else { TokenCheck::Invalid };
        }
        let Some(raw) = decode_expiring(token) else {
            return TokenCheck::Invalid;
        };
        if raw[..ID_LEN] != booking_id {
            return TokenCheck::Invalid;
        }
        let expires_at = expiry_in(&raw);
        if self
            .expiring_mac(booking_id, generation, expires_at)
            .verify_truncated_left(&raw[ID_LEN + EXPIRY_LEN..])
            .is_err()
        {
            return TokenCheck::Invalid;
        }
        if now_unix >= expires_at { TokenCheck::Expired } else { TokenCheck::Valid }
    }

    /// The MAC of a short-lived token.
    fn expiring_mac(&self, booking_id: [u8; 16], generation: u64, expires_at_unix: i64) -> HmacSha256 {
        let mut mac = self.mac(booking_id, generation);
        mac.update(EXPIRY_LABEL);
        mac.update(&expires_at_unix.to_be_bytes());
        mac
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

/// What a token check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    /// The token opens the booking now.
    Valid,
    /// A genuine short-lived token whose time is up.
    Expired,
    /// Not a token for this booking at its current generation (forged, tampered, rotated).
    Invalid,
}

/// The booking id a well-formed token of either form names (None for anything that is not 43 or
/// 54 base64url chars decoding to 32 or 40 bytes). Does not verify the MAC.
pub fn booking_id_of(token: &str) -> Option<[u8; 16]> {
    let mut id = [0u8; ID_LEN];
    if token.len() == EXPIRING_TOKEN_CHARS {
        id.copy_from_slice(&decode_expiring(token)?[..ID_LEN]);
    } else {
        id.copy_from_slice(&decode(token)?[..ID_LEN]);
    }
    Some(id)
}

fn expiry_in(raw: &[u8; ID_LEN + EXPIRY_LEN + TAG_LEN]) -> i64 {
    let mut bytes = [0u8; EXPIRY_LEN];
    bytes.copy_from_slice(&raw[ID_LEN..ID_LEN + EXPIRY_LEN]);
    i64::from_be_bytes(bytes)
}

/// Decodes a short-lived token to its 40 raw bytes, or `None` if it is not exactly 54 base64url
/// characters.
fn decode_expiring(token: &str) -> Option<[u8; ID_LEN + EXPIRY_LEN + TAG_LEN]> {
    if token.len() != EXPIRING_TOKEN_CHARS {
        return None;
    }
    let mut raw = [0u8; ID_LEN + EXPIRY_LEN + TAG_LEN];
    match URL_SAFE_NO_PAD.decode_slice(token, &mut raw) {
        Ok(n) if n == raw.len() => Some(raw),
        _ => None,
    }
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
    fn expiring_token_is_valid_until_its_expiry_then_expired() {
        let key = key();
        let token = key.expiring_token(ID, 4, 1_800_000_000);
        assert_eq!(token.len(), 54);
        assert_eq!(booking_id_of(&token), Some(ID));
        assert_eq!(key.check(&token, ID, 4, 1_799_999_999), TokenCheck::Valid);
        assert_eq!(key.check(&token, ID, 4, 1_800_000_000), TokenCheck::Expired);
        // Rotation kills it; another booking, key or generation never opens it, expired or not.
        assert_eq!(key.check(&token, ID, 5, 0), TokenCheck::Invalid);
        let mut other = ID;
        other[0] ^= 1;
        assert_eq!(key.check(&token, other, 4, 0), TokenCheck::Invalid);
        assert_eq!(ManageTokenKey::derive(b"x").check(&token, ID, 4, 0), TokenCheck::Invalid);
        // The permanent form still checks through the same call.
        assert_eq!(key.check(&key.token(ID, 4), ID, 4, i64::MAX), TokenCheck::Valid);
    }

    #[test]
    fn a_moved_expiry_or_any_tampered_character_is_invalid_not_expired() {
        let key = key();
        let token = key.expiring_token(ID, 1, 1_000);
        let mut raw = [0u8; 40];
        assert_eq!(URL_SAFE_NO_PAD.decode_slice(&token, &mut raw), Ok(40));
        raw[16..24].copy_from_slice(&i64::MAX.to_be_bytes());
        let extended = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(key.check(&extended, ID, 1, 2_000), TokenCheck::Invalid);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).expect("ascii");
            assert_eq!(key.check(&tampered, ID, 1, 2_000), TokenCheck::Invalid, "tampered at {i}");
        }
        // A permanent token's bytes never pass as a short-lived one, nor the reverse.
        assert!(!key.verify(&token[..43], ID, 1));
    }

    #[test]
    fn debug_hides_the_key() {
        let key = ManageTokenKey { key: [0xab; 32] };
        let shown = format!("{key:?}");
        assert!(!shown.to_lowercase().contains("ab, ") && !shown.contains("171"), "{shown}");
        assert_eq!(shown, "ManageTokenKey(<redacted>)");
    }
}
