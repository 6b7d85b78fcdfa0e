//! Everything a session can be told, with the defaults listed in the README.

use alloc::string::String;
use core::fmt;
use core::time::Duration;

use crate::backoff::BackoffConfig;
use crate::epoch::WelcomeReader;
use crate::error::ConfigError;
use crate::heartbeat::HeartbeatConfig;
use crate::queue::QueueBounds;
use crate::redact::redact_url;
use crate::resume::{Cursor, CursorExtractor, ResumeMode};
use crate::retry::RetryPolicy;

/// A session's settings. Build one with [`Config::new`] and change the fields you need.
#[derive(Clone)]
pub struct Config {
    /// The `ws://` or `wss://` URL to connect to.
    pub url: String,
    /// Delay between attempts.
    pub backoff: BackoffConfig,
    /// Consecutive failed attempts after which the session fails; `None` retries forever.
    /// Default 10.
    pub max_failures: Option<u32>,
    /// Longest time a run of failures may last before the session fails; `None` for no
    /// limit. Default none.
    pub max_retry_duration: Option<Duration>,
    /// How long a connection must stay open (or deliver a message) to count as healthy,
    /// which resets the failure count and backoff. Default 5 s.
    pub stability_window: Duration,
    /// Deadline for the whole handshake: DNS, TCP, TLS and upgrade. Default 10 s.
    pub connect_timeout: Duration,
    /// Dead-connection detection; `None` disables it. Default a Ping every 15 s, dead
    /// after 10 s more of silence.
    pub heartbeat: Option<HeartbeatConfig>,
    /// Which disconnects are retried, and when.
    pub retry: RetryPolicy,
    /// Bounds of the outbound queue.
    pub queue: QueueBounds,
    /// Finds the cursor in inbound messages; `None` disables deduplication and resume.
    pub cursor: Option<CursorExtractor>,
    /// How the last cursor is sent back on reconnect. Default not at all.
    pub resume: ResumeMode,
    /// The cursor to resume from on the first connection (for example one persisted by a
    /// previous run). Default none.
    pub start_cursor: Option<Cursor>,
    /// Reads the server's welcome at the start of each connection (see [`crate::Welcome`]);
    /// `None`: the server sends none. Default none.
    pub welcome: Option<WelcomeReader>,
    /// The query parameter that sends the epoch of the resume cursor back, beside it, when
    /// the cursor goes as a query parameter and the epoch is known. Default `epoch`.
    pub epoch_query: Option<String>,
    /// Cursors go up by exactly one per message, so a skip is reported as
    /// [`Event::CursorGap`](crate::Event::CursorGap). Default false.
    pub contiguous_cursors: bool,
    /// Deadline for a graceful close to flush the queue and finish the close handshake.
    /// Default 5 s.
    pub close_timeout: Duration,
    /// The driver confirms each message written to the OS socket with
    /// [`SocketEvent::Written`](crate::SocketEvent::Written) and hands back what a socket
    /// never wrote with [`Session::return_unwritten`](crate::Session::return_unwritten).
    /// Messages stay counted against the queue's bounds until confirmed, and
    /// [`Stats::messages_sent`](crate::Stats::messages_sent) counts confirmed ones. Off:
    /// a message counts as written once handed to the driver. Default off.
    pub confirm_writes: bool,
}

impl Config {
    /// The defaults, for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            backoff: BackoffConfig::default(),
            max_failures: Some(10),
            max_retry_duration: None,
            stability_window: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            heartbeat: Some(HeartbeatConfig::default()),
            retry: RetryPolicy::default(),
            queue: QueueBounds::default(),
            cursor: None,
            resume: ResumeMode::None,
            start_cursor: None,
            welcome: None,
            epoch_query: Some("epoch".into()),
            contiguous_cursors: false,
            close_timeout: Duration::from_secs(5),
            confirm_writes: false,
        }
    }

    /// Checks the settings, naming the first one that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Compared in place: a lowercased copy would allocate for nothing.
        let scheme = |prefix: &str| {
            self.url
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        };
        if !(scheme("ws://") || scheme("wss://")) {
            return Err(ConfigError::UrlScheme);
        }
        let backoff = &self.backoff;
        if backoff.initial.is_zero() {
            return Err(ConfigError::ZeroDuration("backoff initial"));
        }
        if backoff.max < backoff.initial {
            return Err(ConfigError::BackoffMaxBelowInitial {
                initial: backoff.initial,
                max: backoff.max,
            });
        }
        if !(backoff.multiplier.is_finite() && backoff.multiplier >= 1.0) {
            return Err(ConfigError::BackoffMultiplier);
        }
        if self.max_failures == Some(0) {
            return Err(ConfigError::ZeroBound("max failures"));
        }
        for (name, duration) in [
            ("connect timeout", self.connect_timeout),
            ("close timeout", self.close_timeout),
        ] {
            if duration.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        if let Some(heartbeat) = &self.heartbeat {
            if heartbeat.interval.is_zero() {
                return Err(ConfigError::ZeroDuration("heartbeat interval"));
            }
            if heartbeat.timeout.is_zero() {
                return Err(ConfigError::ZeroDuration("heartbeat timeout"));
            }
        }
        if self.queue.max_messages == 0 {
            return Err(ConfigError::ZeroBound("queue max messages"));
        }
        if self.queue.max_bytes == 0 {
            return Err(ConfigError::ZeroBound("queue max bytes"));
        }
        Ok(())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &redact_url(&self.url))
            .field("backoff", &self.backoff)
            .field("max_failures", &self.max_failures)
            .field("max_retry_duration", &self.max_retry_duration)
            .field("stability_window", &self.stability_window)
            .field("connect_timeout", &self.connect_timeout)
            .field("heartbeat", &self.heartbeat)
            .field("retry", &self.retry)
            .field("queue", &self.queue)
            .field("cursor", &self.cursor.as_ref().map(|_| "extractor"))
            .field("resume", &self.resume)
            .field("start_cursor", &self.start_cursor)
            .field("welcome", &self.welcome.as_ref().map(|_| "reader"))
            .field("epoch_query", &self.epoch_query)
            .field("contiguous_cursors", &self.contiguous_cursors)
            .field("close_timeout", &self.close_timeout)
            .field("confirm_writes", &self.confirm_writes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::prelude::rust_2024::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::new("wss://example.com/feed").validate(), Ok(()));
        assert_eq!(Config::new("WS://example.com").validate(), Ok(()));
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(
            Config::new("http://x").validate(),
            Err(ConfigError::UrlScheme)
        );
        let mut config = Config::new("ws://x");
        config.backoff.max = Duration::from_millis(1);
        assert!(matches!(
            config.validate(),
            Err(ConfigError::BackoffMaxBelowInitial { .. })
        ));
        let mut config = Config::new("ws://x");
        config.backoff.multiplier = f64::NAN;
        assert_eq!(config.validate(), Err(ConfigError::BackoffMultiplier));
        let mut config = Config::new("ws://x");
        config.queue.max_bytes = 0;
        assert_eq!(
            config.validate(),
            Err(ConfigError::ZeroBound("queue max bytes"))
        );
        let mut config = Config::new("ws://x");
        config.max_failures = Some(0);
        assert_eq!(
            config.validate(),
            Err(ConfigError::ZeroBound("max failures"))
        );
    }

    #[test]
    fn debug_redacts_the_url() {
        let config = Config::new("wss://h/feed?token=secret");
        assert!(!format!("{config:?}").contains("secret"));
    }
}
