//! URLs fit for logs: query values and credentials removed.

use alloc::string::String;
/// `url` with every query value replaced by `***`, user info removed and the fragment
/// dropped, so tokens passed in URLs never reach a log. A bare query item (`?SECRET`, no
/// `=`) is a value without a name, so it is hidden too: only names survive.
pub fn redact_url(url: &str) -> String {
    let without_fragment = url.split_once('#').map_or(url, |(head, _)| head);
    let (base, query) = match without_fragment.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (without_fragment, None),
    };
    let mut out = String::with_capacity(url.len());
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            out.push_str(scheme);
            out.push_str("://");
            if host.len() != authority.len() {
                out.push_str("***@");
            }
            out.push_str(host);
            out.push_str(path);
        }
        None => out.push_str(base),
    }
    if let Some(query) = query {
        let mut separator = '?';
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            out.push(separator);
            separator = '&';
            match pair.split_once('=') {
                Some((name, _)) => {
                    out.push_str(name);
                    out.push_str("=***");
                }
                None => out.push_str("***"),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    #[test]
    fn query_values_and_credentials_are_hidden() {
        assert_eq!(
            redact_url("wss://user:pw@h:443/feed?token=abc&cursor=5#x"),
            "wss://***@h:443/feed?token=***&cursor=***"
        );
        assert_eq!(redact_url("ws://h/feed"), "ws://h/feed");
    }

    #[test]
    fn bare_query_items_are_hidden() {
        assert_eq!(redact_url("wss://h/ws?SECRET"), "wss://h/ws?***");
        assert_eq!(redact_url("ws://h?a=1&SECRET&b"), "ws://h?a=***&***&***");
    }
}
