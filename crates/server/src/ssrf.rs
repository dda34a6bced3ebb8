//! The SSRF guard for webhook targets: a URL passes only if its scheme, shape and every
//! address its host resolves to are acceptable (global unicast, unless
//! `--allow-private-webhooks`). The address classification itself is in
//! [`slotd_core::webhook`]; this module adds name resolution, which tests replace with a static
//! table so that no test ever looks up or contacts a non-loopback address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use slotd_core::webhook::{WebhookTarget, check_webhook_url, is_public_unicast};

/// How host names become addresses.
#[derive(Clone, Debug)]
pub enum Resolver {
    /// The system resolver (production).
    System,
    /// A fixed table (tests): names not in it do not resolve.
    Static(Arc<HashMap<String, Vec<IpAddr>>>),
}

impl Resolver {
    /// The addresses of `host`.
    pub async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>> {
        match self {
            Resolver::System => Ok(tokio::net::lookup_host((host, port)).await?.map(|a| a.ip()).collect()),
            Resolver::Static(table) => table
                .get(&host.to_ascii_lowercase())
                .cloned()
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host")),
        }
    }
}

/// A target that passed the guard, with the addresses it may be reached at (the delivery
/// connects to one of these, never to a fresh lookup).
#[derive(Clone, Debug)]
pub struct CheckedTarget {
    /// Scheme, host and port.
    pub target: WebhookTarget,
    /// The vetted addresses (with private targets allowed, only an IP literal's own).
    pub addresses: Vec<IpAddr>,
}

/// Checks a webhook URL; the error is a sentence for the API's 422.
pub async fn check(url: &str, resolver: &Resolver, allow_private: bool) -> Result<CheckedTarget, String> {
    let target = check_webhook_url(url).map_err(|e| e.to_string())?;
    if allow_private {
        // Every address is acceptable, so there is nothing to vet now: the name is resolved
        // when a delivery connects (and never looked up for a URL that is only stored).
        return Ok(CheckedTarget { addresses: target.is_ip_literal.into_iter().collect(), target });
    }
    let addresses = match target.is_ip_literal {
        Some(ip) => {
            vet(&target.host, &[ip], false)?;
            vec![ip]
        }
        None => resolve_vetted(resolver, &target.host, target.port, false).await?,
    };
    Ok(CheckedTarget { target, addresses })
}

/// Resolves `host` and vets every address it has (see [`vet`]): what endpoint creation checks,
/// and what a delivery connects through, so the address vetted is the address connected to.
pub async fn resolve_vetted(
    resolver: &Resolver,
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<IpAddr>, String> {
    let addresses =
        resolver.resolve(host, port).await.map_err(|e| format!("the host '{host}' does not resolve ({e})"))?;
    vet(host, &addresses, allow_private)?;
    Ok(addresses)
}

/// Checks resolved addresses: there is at least one, and every one is public unless private
/// targets are allowed.
pub fn vet(host: &str, addresses: &[IpAddr], allow_private: bool) -> Result<(), String> {
    if addresses.is_empty() {
        return Err(format!("the host '{host}' does not resolve"));
    }
    if !allow_private && let Some(bad) = addresses.iter().find(|ip| !is_public_unicast(**ip)) {
        return Err(format!(
            "refused by the SSRF guard: '{host}' resolves to {bad}, which is not a public address (loopback, \
             private, link-local and metadata addresses are refused)"
        ));
    }
    Ok(())
}
