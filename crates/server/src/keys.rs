//! API keys: `sk_live_` followed by 43 random alphanumeric characters (about 256 bits). Only
//! their SHA-256 hash is stored; the key itself is shown once, when it is created.

use rand::Rng;
use rand::distr::Alphanumeric;
use slotd_store::{OrgId, Store, StoreError};

use crate::extract::hash_api_key;

/// Every key starts with this.
pub const API_KEY_PREFIX: &str = "sk_live_";

/// A fresh random key.
pub fn generate_api_key() -> String {
    let random: String = rand::rng().sample_iter(&Alphanumeric).take(43).map(char::from).collect();
    format!("{API_KEY_PREFIX}{random}")
}

/// Creates and stores a key for `org`, answering the key (the only time it is seen).
pub async fn create_api_key(store: &Store, org: OrgId) -> Result<String, StoreError> {
    let key = generate_api_key();
    store.create_api_key(org, &hash_api_key(&key), &key[..API_KEY_PREFIX.len() + 4]).await?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_long() {
        let (a, b) = (generate_api_key(), generate_api_key());
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_eq!(a.len(), API_KEY_PREFIX.len() + 43);
        assert_ne!(a, b);
    }
}
