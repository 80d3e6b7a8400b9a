//! The disposable-domain list (`disposable_domains.txt`, in the repository, compiled in): a
//! sign-up at one of these domains, or at a subdomain of one, is flagged for review.
//!
//! A plain sorted list of a few hundred names, searched by binary search over the address's
//! domain and each parent of it: no crate is needed for that, and the list stays a text file
//! anyone can read and extend.

use std::sync::OnceLock;

const LIST: &str = include_str!("disposable_domains.txt");

/// The list's domains, sorted (comments and blank lines left out).
fn domains() -> &'static [&'static str] {
    static DOMAINS: OnceLock<Vec<&'static str>> = OnceLock::new();
    DOMAINS.get_or_init(|| {
        let mut domains: Vec<&'static str> = LIST
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        domains.sort_unstable();
        domains.dedup();
        domains
    })
}

/// Whether `domain` (lower case, as [`crate::domain::Email`] normalizes it) is a listed
/// disposable domain or a subdomain of one.
pub fn is_disposable(domain: &str) -> bool {
    let domains = domains();
    let mut candidate = domain.trim_end_matches('.');
    loop {
        if domains.binary_search(&candidate).is_ok() {
            return true;
        }
        match candidate.split_once('.') {
            // Never down to a bare top-level domain: `com` is not listed, but say so.
            Some((_, parent)) if parent.contains('.') => candidate = parent,
            _ => return false,
        }
    }
}

/// How many domains the list holds (for the start-up log and tests).
pub fn len() -> usize {
    domains().len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn listed_domains_and_their_subdomains_are_disposable() {
        assert!(is_disposable("mailinator.com"));
        assert!(is_disposable("yopmail.com"));
        assert!(is_disposable("guerrillamail.com"));
        assert!(is_disposable("eu.mailinator.com"));
        assert!(is_disposable("a.b.sharklasers.com"));
    }

    #[test]
    fn ordinary_providers_and_lookalikes_are_not() {
        for domain in [
            "gmail.com",
            "example.com",
            "outlook.com",
            "proton.me",
            "mailinator.com.example.org",
            "notmailinator.co",
            "com",
            "",
        ] {
            assert!(!is_disposable(domain), "{domain}");
        }
    }

    #[test]
    fn the_list_is_a_few_hundred_plain_lower_case_domains_each_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for line in LIST.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            assert!(seen.insert(line), "{line} is listed twice");
            assert!(
                line.contains('.')
                    && line.chars().all(|c| c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || c == '.'
                        || c == '-'),
                "{line:?} is not a plain lower-case domain"
            );
            assert!(
                crate::domain::Email::parse(&format!("someone@{line}")).is_ok(),
                "{line} is not a domain an address can have"
            );
        }
        assert!(len() >= 300, "a few hundred domains, got {}", len());
    }

    proptest! {
        #[test]
        fn any_domain_text_is_answered_without_panicking(domain in "\\PC{0,300}") {
            let _ = is_disposable(&domain);
        }
    }
}
