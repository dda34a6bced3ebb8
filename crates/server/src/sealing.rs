//! Secrets that must be read back (webhook signing secrets, later calendar credentials) are
//! stored sealed: XChaCha20-Poly1305 with a key derived from the server secret and a random
//! 192-bit nonce per value. A database dump alone reveals none of them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Seals and opens stored secrets.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

/// Marks the format of sealed values, so a later change of scheme can tell them apart.
const PREFIX: &str = "v1:";

impl Sealer {
    /// The sealer for a server secret (its own key, derived, never the secret itself).
    pub fn derive(server_secret: &[u8]) -> Sealer {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(server_secret).expect("HMAC takes keys of any length");
        mac.update(b"slotd sealed secrets v1");
        let key = mac.finalize().into_bytes();
        Sealer { cipher: XChaCha20Poly1305::new(&key) }
    }

    /// Seals `plaintext` under a fresh random nonce.
    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::Rng::fill(&mut rand::rng(), &mut nonce[..]);
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), plaintext.as_bytes())
            .expect("encryption of an in-memory buffer cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(bytes))
    }

    /// Opens a sealed value; `None` if it was not sealed with this server secret or was altered.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = STANDARD.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        let plain = self.cipher.decrypt(&XNonce::from(nonce), ciphertext).ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_same_server_secret_and_unaltered() {
        let sealer = Sealer::derive(b"server secret one, at least 32 characters");
        let sealed = sealer.seal("whsec_abc");
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(sealed, sealer.seal("whsec_abc"), "a fresh nonce each time");
        assert_eq!(sealer.open(&sealed).as_deref(), Some("whsec_abc"));
        let other = Sealer::derive(b"server secret two, at least 32 characters");
        assert_eq!(other.open(&sealed), None);
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(sealer.open(&String::from_utf8(altered).unwrap()), None);
        assert_eq!(sealer.open("v1:"), None);
        assert_eq!(sealer.open("garbage"), None);
    }
}
