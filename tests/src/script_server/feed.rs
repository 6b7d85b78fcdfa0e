//! The feed message format `Step::SendFeed` sends, so tests can build the messages they expect.

/// The feed message with sequence number `seq`: `{"seq":<seq>,"data":"x"}`.
pub fn feed_message(seq: u64) -> String {
    format!(r#"{{"seq":{seq},"data":"x"}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_message_is_compact_json() {
        assert_eq!(feed_message(7), r#"{"seq":7,"data":"x"}"#);
    }
}
