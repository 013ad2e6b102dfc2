//! Domain values parsed once at the edge: a [`DomainName`] and an [`AccountId`].
//!
//! Everything behind the GraphQL layer takes these types, so nothing downstream
//! re-validates, and equivalent spellings of one name (case, trailing dot, Unicode
//! vs punycode) share one cache entry and one poller.

mod account_id;
mod domain_name;

pub use account_id::{AccountId, InvalidAccountId};
pub use domain_name::{DomainName, InvalidDomainName};

/// Cuts user input echoed back in an error message to a readable length.
fn excerpt(input: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut chars = input.chars();
    let head: String = chars.by_ref().take(MAX_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}
