//! knockoff-serve's configuration: command-line flags that each also read a `KNOCKOFF_*`
//! environment variable, validated once into a typed [`ServerConfig`] whose `Debug` output
//! is safe to log (the admin and reviewer tokens are kept only as digests and printed as
//! `<redacted>`).

use crate::serve::overrides::{ThresholdError, ThresholdOverrides};
use crate::serve::{AdmissionOptions, CoreOptions, StateOptions};
use crate::store::DEFAULT_STORE;
use crate::telemetry::LogFormat;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_MODEL: &str = "models/default";
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_BATCH_LISTINGS: usize = 1000;
/// 3 MiB: a full 1,000-listing batch of listings up to 3 KB each (typical ones are 0.2 KB);
/// it must fit the in-flight bound beside the small requests' reserve.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// Requests waiting for the model thread; the in-flight bound, not this, bounds memory, so
/// it is large enough for 1,000 connections of single listings.
pub const DEFAULT_QUEUE_CAPACITY: usize = 2048;
/// Request-body bytes in flight at once (see README, "Overload"): with the shipped model
/// about 40 requests of 1,000 listings, and peak RSS under 300 MB.
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 4 * 1024 * 1024;
/// Requests up to 16 KiB (about 80 typical listings) count as small.
pub const DEFAULT_SMALL_REQUEST_BYTES: usize = 16 * 1024;
/// 512 KiB of the in-flight bound is kept for small requests.
pub const DEFAULT_SMALL_RESERVE_BYTES: usize = 512 * 1024;
/// Bytes each connection may buffer while reading a request (hyper's read buffer): 256
/// connections of 1,000-listing bodies hold at most 16 MiB in these (README, "Overload").
pub const DEFAULT_CONNECTION_BUFFER_BYTES: usize = 64 * 1024;
/// hyper's floor for a connection's read buffer (it refuses anything smaller).
pub const MIN_CONNECTION_BUFFER_BYTES: usize = 8192;
/// Milliseconds a request may wait for room before 429 (see README, "Overload"): long
/// enough that refused clients do not resend faster than work finishes, short against a
/// client's usual 2 s timeout.
pub const DEFAULT_ADMISSION_WAIT_MS: u64 = 500;
/// Longest admission wait accepted: beyond it clients time out before the 429 arrives.
pub const MAX_ADMISSION_WAIT_MS: u64 = 10_000;
pub const DEFAULT_MAX_MODEL_BATCH: usize = 256;
pub const DEFAULT_REASONS: usize = 3;
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 30;
/// Shorter tokens are guessable; refusing them at start-up beats an admin API that is
/// open in practice. The reviewer token has the same minimum.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;
/// Listings kept in the review queue; beyond it the oldest are dropped (README, "Reviews").
pub const DEFAULT_REVIEW_QUEUE_MAX: usize = 100_000;
/// Upper bound on explanation reasons per listing: the model's own.
pub use crate::model::MAX_REASONS;

/// Real-time counterfeit-listing scoring server.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "knockoff-serve", version, about)]
pub struct Cli {
    /// Model directory to serve (written by knockoff-train).
    #[arg(long, env = "KNOCKOFF_MODEL", default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Address to listen on; port 0 picks a free port (the bound address is logged).
    #[arg(long, env = "KNOCKOFF_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Most listings accepted in one request ({"listings": [...]} or one v2 batch).
    #[arg(long, env = "KNOCKOFF_MAX_BATCH_LISTINGS", default_value_t = DEFAULT_MAX_BATCH_LISTINGS)]
    pub max_batch_listings: usize,
    /// Largest request body in bytes; larger bodies get 413.
    #[arg(long, env = "KNOCKOFF_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Request-body bytes in flight at once (being read, parsed, featurised, queued,
    /// scored or answered); a request that does not fit gets 429 with Retry-After before
    /// its body is read. Peak memory follows from it (README, "Overload").
    #[arg(long, env = "KNOCKOFF_MAX_INFLIGHT_BYTES", default_value_t = DEFAULT_MAX_INFLIGHT_BYTES)]
    pub max_inflight_bytes: usize,
    /// Requests with bodies up to this many bytes are small and may use the reserve.
    #[arg(long, env = "KNOCKOFF_SMALL_REQUEST_BYTES", default_value_t = DEFAULT_SMALL_REQUEST_BYTES)]
    pub small_request_bytes: usize,
    /// Bytes of --max-inflight-bytes kept for small requests, so big batches cannot shut
    /// them out.
    #[arg(long, env = "KNOCKOFF_SMALL_RESERVE_BYTES", default_value_t = DEFAULT_SMALL_RESERVE_BYTES)]
    pub small_reserve_bytes: usize,
    /// Milliseconds a request that does not fit may wait for room (first come, first
    /// served) before its 429; 0 answers 429 at once.
    #[arg(long, env = "KNOCKOFF_ADMISSION_WAIT_MS", default_value_t = DEFAULT_ADMISSION_WAIT_MS)]
    pub admission_wait_ms: u64,
    /// Bytes each connection may buffer while reading a request (at least 8192); the
    /// request line and headers must fit.
    #[arg(long, env = "KNOCKOFF_CONNECTION_BUFFER_BYTES", default_value_t = DEFAULT_CONNECTION_BUFFER_BYTES)]
    pub connection_buffer_bytes: usize,
    /// Requests that may wait for the model at once; beyond that, 429 with Retry-After.
    #[arg(long, env = "KNOCKOFF_QUEUE_CAPACITY", default_value_t = DEFAULT_QUEUE_CAPACITY)]
    pub queue_capacity: usize,
    /// Most listings the model scores in one pass; queued requests are merged up to this
    /// (a single larger request is scored on its own).
    #[arg(long, env = "KNOCKOFF_MAX_MODEL_BATCH", default_value_t = DEFAULT_MAX_MODEL_BATCH)]
    pub max_model_batch: usize,
    /// Reasons returned per listing by /v1/score (0 turns explanations off).
    #[arg(long, env = "KNOCKOFF_REASONS", default_value_t = DEFAULT_REASONS)]
    pub reasons: usize,
    /// Bearer token for /admin routes; without one they are disabled.
    #[arg(long, env = "KNOCKOFF_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Bearer token for the review queue, reviews and their export (the admin token works
    /// too); without either token those routes are disabled.
    #[arg(long, env = "KNOCKOFF_REVIEWER_TOKEN", hide_env_values = true)]
    pub reviewer_token: Option<String>,
    /// Most listings kept in the review queue; when full, the oldest are dropped.
    #[arg(long, env = "KNOCKOFF_REVIEW_QUEUE_MAX", default_value_t = DEFAULT_REVIEW_QUEUE_MAX)]
    pub review_queue_max: usize,
    /// Seconds to let in-flight requests finish after SIGTERM/Ctrl-C.
    #[arg(long, env = "KNOCKOFF_SHUTDOWN_TIMEOUT_SECS", default_value_t = DEFAULT_SHUTDOWN_TIMEOUT_SECS)]
    pub shutdown_timeout_secs: u64,
    #[arg(long, env = "KNOCKOFF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The embedded store (brand registry): a SQLite file, created on first start.
    #[arg(long, env = "KNOCKOFF_STORE", default_value = DEFAULT_STORE)]
    pub store: PathBuf,
    /// Share of counterfeits expected among the listings served, in (0, 1): probabilities
    /// are shifted to it and thresholds chosen so the model's precision and recall targets
    /// hold at it. Default: the model's validation share.
    #[arg(long, env = "KNOCKOFF_EXPECTED_PREVALENCE", value_parser = crate::decision::parse_prevalence)]
    pub expected_prevalence: Option<f64>,
    /// Overrides the model's review threshold (probability at or above which to review).
    #[arg(long, env = "KNOCKOFF_REVIEW_THRESHOLD")]
    pub review_threshold: Option<f32>,
    /// Overrides the model's block threshold (probability at or above which to block).
    #[arg(long, env = "KNOCKOFF_BLOCK_THRESHOLD")]
    pub block_threshold: Option<f32>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("--{flag} must be at least {min} (got {value})")]
    TooSmall {
        flag: &'static str,
        min: usize,
        value: usize,
    },
    #[error("--{flag} must be at most {max} (got {value})")]
    TooLarge {
        flag: &'static str,
        max: usize,
        value: usize,
    },
    #[error("--{flag} must be at least {min} (got {value}): {reason}")]
    TooSmallFor {
        flag: &'static str,
        min: usize,
        value: usize,
        reason: &'static str,
    },
    #[error(transparent)]
    Thresholds(#[from] ThresholdError),
    #[error("--store must name a file (it is created on first start)")]
    EmptyStore,
    #[error("--{flag} must be at least {MIN_ADMIN_TOKEN_CHARS} characters long")]
    ShortToken { flag: &'static str },
}

/// A configured bearer token (admin or reviewer). Only its SHA-256 digest is kept, so the
/// secret never sits in the config that is logged, cloned or printed.
#[derive(Clone)]
pub struct BearerToken {
    digest: [u8; 32],
}

/// The admin token (the name the admin routes know it by).
pub type AdminToken = BearerToken;

impl BearerToken {
    /// The admin token (`--admin-token`).
    pub fn new(token: &str) -> Result<Self, ConfigError> {
        Self::for_flag("admin-token", token)
    }

    /// The token given by `--{flag}`; shorter than [`MIN_ADMIN_TOKEN_CHARS`] is refused.
    pub fn for_flag(flag: &'static str, token: &str) -> Result<Self, ConfigError> {
        if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
            return Err(ConfigError::ShortToken { flag });
        }
        Ok(BearerToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Compares in constant time. Hashing first makes the comparison independent of both
    /// the candidate's length and where it first differs.
    pub fn matches(&self, candidate: &str) -> bool {
        let candidate: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        let difference = self
            .digest
            .iter()
            .zip(candidate.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        // black_box keeps the optimiser from turning the fold into an early-exit compare.
        std::hint::black_box(difference) == 0
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub model_path: PathBuf,
    pub addr: SocketAddr,
    pub max_batch_listings: usize,
    pub max_body_bytes: usize,
    pub admission: AdmissionOptions,
    /// Read buffer of each connection, in bytes.
    pub connection_buffer_bytes: usize,
    pub queue_capacity: usize,
    pub max_model_batch: usize,
    pub reasons: usize,
    pub admin_token: Option<AdminToken>,
    /// Opens the review routes (as the admin token also does).
    pub reviewer_token: Option<BearerToken>,
    /// Most listings in the review queue (oldest dropped first).
    pub review_queue_max: usize,
    pub shutdown_timeout: Duration,
    pub log_format: LogFormat,
    pub thresholds: ThresholdOverrides,
    /// The store file; `None` keeps the store in memory (what [`ServerConfig::new`] gives,
    /// so tests and embedders leave no file behind).
    pub store_path: Option<PathBuf>,
}

impl ServerConfig {
    /// The defaults of every flag, serving `model_path`, except the store, which is kept
    /// in memory: what tests and embedders start from.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        ServerConfig {
            model_path: model_path.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_batch_listings: DEFAULT_MAX_BATCH_LISTINGS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            admission: AdmissionOptions {
                max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
                small_request_bytes: DEFAULT_SMALL_REQUEST_BYTES,
                small_reserve_bytes: DEFAULT_SMALL_RESERVE_BYTES,
                max_wait: Duration::from_millis(DEFAULT_ADMISSION_WAIT_MS),
            },
            connection_buffer_bytes: DEFAULT_CONNECTION_BUFFER_BYTES,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_model_batch: DEFAULT_MAX_MODEL_BATCH,
            reasons: DEFAULT_REASONS,
            admin_token: None,
            reviewer_token: None,
            review_queue_max: DEFAULT_REVIEW_QUEUE_MAX,
            shutdown_timeout: Duration::from_secs(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
            log_format: LogFormat::Text,
            thresholds: ThresholdOverrides::default(),
            store_path: None,
        }
    }

    /// Checks every bound (the same checks [`Cli::into_config`] runs).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least = |flag, min, value| {
            if value < min {
                Err(ConfigError::TooSmall { flag, min, value })
            } else {
                Ok(())
            }
        };
        at_least("max-batch-listings", 1, self.max_batch_listings)?;
        // Below this not even one small listing fits.
        at_least("max-body-bytes", 64, self.max_body_bytes)?;
        if self.max_body_bytes > u32::MAX as usize {
            return Err(ConfigError::TooLarge {
                flag: "max-body-bytes",
                max: u32::MAX as usize,
                value: self.max_body_bytes,
            });
        }
        self.validate_admission()?;
        at_least(
            "connection-buffer-bytes",
            MIN_CONNECTION_BUFFER_BYTES,
            self.connection_buffer_bytes,
        )?;
        at_least("queue-capacity", 1, self.queue_capacity)?;
        at_least("max-model-batch", 1, self.max_model_batch)?;
        at_least("review-queue-max", 1, self.review_queue_max)?;
        if self.reasons > MAX_REASONS {
            return Err(ConfigError::TooLarge {
                flag: "reasons",
                max: MAX_REASONS,
                value: self.reasons,
            });
        }
        self.thresholds.check()?;
        if self
            .store_path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(ConfigError::EmptyStore);
        }
        Ok(())
    }
}

impl ServerConfig {
    /// The in-flight bound must hold the largest body besides the small requests' reserve,
    /// and the reserve at least one small request.
    fn validate_admission(&self) -> Result<(), ConfigError> {
        let admission = &self.admission;
        let relation = |flag, min, value, reason| {
            if value < min {
                Err(ConfigError::TooSmallFor {
                    flag,
                    min,
                    value,
                    reason,
                })
            } else {
                Ok(())
            }
        };
        let wait_ms = u64::try_from(admission.max_wait.as_millis()).unwrap_or(u64::MAX);
        if wait_ms > MAX_ADMISSION_WAIT_MS {
            return Err(ConfigError::TooLarge {
                flag: "admission-wait-ms",
                max: MAX_ADMISSION_WAIT_MS as usize,
                value: usize::try_from(wait_ms).unwrap_or(usize::MAX),
            });
        }
        relation(
            "small-request-bytes",
            1,
            admission.small_request_bytes,
            "a request of one byte must count as small",
        )?;
        relation(
            "small-reserve-bytes",
            admission.small_request_bytes,
            admission.small_reserve_bytes,
            "the reserve must hold one small request (--small-request-bytes)",
        )?;
        relation(
            "max-inflight-bytes",
            self.max_body_bytes.saturating_add(admission.small_reserve_bytes),
            admission.max_inflight_bytes,
            "it must hold the largest body (--max-body-bytes) beside the reserve (--small-reserve-bytes)",
        )
    }

    /// What the scoring core needs of this configuration.
    pub fn core_options(&self, state: StateOptions) -> CoreOptions {
        CoreOptions {
            queue_capacity: self.queue_capacity,
            max_model_batch: self.max_model_batch,
            thresholds: self.thresholds,
            admission: self.admission,
            state,
        }
    }
}

impl Cli {
    pub fn into_config(self) -> Result<ServerConfig, ConfigError> {
        // An empty variable (KNOCKOFF_ADMIN_TOKEN=) means "not configured": admin stays off.
        let token = |flag, value: Option<&str>| match value.map(str::trim) {
            None | Some("") => Ok(None),
            Some(token) => BearerToken::for_flag(flag, token).map(Some),
        };
        let admin_token = token("admin-token", self.admin_token.as_deref())?;
        let reviewer_token = token("reviewer-token", self.reviewer_token.as_deref())?;
        let config = ServerConfig {
            model_path: self.model,
            addr: self.addr,
            max_batch_listings: self.max_batch_listings,
            max_body_bytes: self.max_body_bytes,
            admission: AdmissionOptions {
                max_inflight_bytes: self.max_inflight_bytes,
                small_request_bytes: self.small_request_bytes,
                small_reserve_bytes: self.small_reserve_bytes,
                max_wait: Duration::from_millis(self.admission_wait_ms),
            },
            connection_buffer_bytes: self.connection_buffer_bytes,
            queue_capacity: self.queue_capacity,
            max_model_batch: self.max_model_batch,
            reasons: self.reasons,
            admin_token,
            reviewer_token,
            review_queue_max: self.review_queue_max,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs),
            log_format: self.log_format,
            thresholds: ThresholdOverrides {
                review: self.review_threshold,
                block: self.block_threshold,
                expected_prevalence: self.expected_prevalence,
            },
            store_path: Some(self.store),
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<ServerConfig, ConfigError> {
        let mut all = vec!["knockoff-serve"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("flags parse").into_config()
    }

    #[test]
    fn defaults_match_the_issue() {
        let config = parse(&["--model", "models/x"]).unwrap();
        assert_eq!(config.model_path, PathBuf::from("models/x"));
        assert_eq!(config.max_batch_listings, 1000);
        assert_eq!(config.reasons, 3);
        assert!(config.admin_token.is_none());
        assert_eq!(config.store_path, Some(PathBuf::from("knockoff.db")));
        // ServerConfig::new and the flags agree on every default but the store.
        let fresh = ServerConfig {
            store_path: Some(PathBuf::from(DEFAULT_STORE)),
            ..ServerConfig::new("models/x")
        };
        assert_eq!(format!("{fresh:?}"), format!("{config:?}"));
    }

    #[test]
    fn every_flag_names_its_environment_variable() {
        use clap::CommandFactory;
        let command = Cli::command();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
            assert_eq!(
                env,
                format!("KNOCKOFF_{}", id.to_uppercase()),
                "flag --{id} must read KNOCKOFF_{}",
                id.to_uppercase()
            );
        }
    }

    #[test]
    fn admin_token_is_redacted_and_compared_exactly() {
        let config = parse(&["--admin-token", "s3cret-s3cret-s3cret"]).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("<redacted>"));
        let token = config.admin_token.unwrap();
        assert!(token.matches("s3cret-s3cret-s3cret"));
        assert!(!token.matches("s3cret-s3cret-s3cre"));
        assert!(!token.matches(""));
        assert_eq!(
            parse(&["--admin-token", "short"]).unwrap_err(),
            ConfigError::ShortToken {
                flag: "admin-token"
            }
        );
        assert!(parse(&["--admin-token", ""]).unwrap().admin_token.is_none());
    }

    #[test]
    fn reviewer_token_and_queue_bound() {
        let config = parse(&["--reviewer-token", "r3viewer-r3viewer-1"]).unwrap();
        assert!(!format!("{config:?}").contains("r3viewer"));
        assert!(config
            .reviewer_token
            .unwrap()
            .matches("r3viewer-r3viewer-1"));
        assert_eq!(config.review_queue_max, DEFAULT_REVIEW_QUEUE_MAX);
        let error = parse(&["--reviewer-token", "short"]).unwrap_err();
        assert_eq!(
            error,
            ConfigError::ShortToken {
                flag: "reviewer-token"
            }
        );
        assert!(error.to_string().contains("--reviewer-token"), "{error}");
        assert!(parse(&["--reviewer-token", " "])
            .unwrap()
            .reviewer_token
            .is_none());
        assert!(matches!(
            parse(&["--review-queue-max", "0"]),
            Err(ConfigError::TooSmall {
                flag: "review-queue-max",
                ..
            })
        ));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(matches!(
            parse(&["--queue-capacity", "0"]),
            Err(ConfigError::TooSmall {
                flag: "queue-capacity",
                ..
            })
        ));
        assert!(matches!(
            parse(&["--review-threshold", "1.5"]),
            Err(ConfigError::Thresholds(ThresholdError::OutOfRange { .. }))
        ));
        assert!(matches!(
            parse(&["--review-threshold", "0.9", "--block-threshold", "0.5"]),
            Err(ConfigError::Thresholds(ThresholdError::Order { .. }))
        ));
        // clap refuses an empty path; an embedder's empty path is refused by validate.
        assert!(Cli::try_parse_from(["knockoff-serve", "--store", ""]).is_err());
        let empty_store = ServerConfig {
            store_path: Some(PathBuf::new()),
            ..ServerConfig::new("models/x")
        };
        assert_eq!(empty_store.validate(), Err(ConfigError::EmptyStore));
        assert!(matches!(
            parse(&["--reasons", "1000"]),
            Err(ConfigError::TooLarge { .. })
        ));
        for (flag, args) in [
            ("small-request-bytes", vec!["--small-request-bytes", "0"]),
            ("small-reserve-bytes", vec!["--small-reserve-bytes", "1000"]),
            ("max-inflight-bytes", vec!["--max-inflight-bytes", "0"]),
            (
                "max-inflight-bytes",
                vec![
                    "--max-body-bytes",
                    "2000000",
                    "--max-inflight-bytes",
                    "2000000",
                ],
            ),
        ] {
            let e = parse(&args).unwrap_err();
            assert!(
                matches!(e, ConfigError::TooSmallFor { flag: f, .. } if f == flag),
                "{args:?}: {e}"
            );
            assert!(e.to_string().contains(&format!("--{flag}")), "{e}");
        }
        assert!(parse(&["--max-body-bytes", "5000000000"]).is_err());
        // hyper panics on a read buffer under 8 KiB: refused here instead.
        assert_eq!(
            parse(&["--connection-buffer-bytes", "8191"]).unwrap_err(),
            ConfigError::TooSmall {
                flag: "connection-buffer-bytes",
                min: MIN_CONNECTION_BUFFER_BYTES,
                value: 8191
            }
        );
        assert_eq!(
            parse(&["--connection-buffer-bytes", "8192"])
                .unwrap()
                .connection_buffer_bytes,
            8192
        );
        assert!(matches!(
            parse(&["--admission-wait-ms", "10001"]),
            Err(ConfigError::TooLarge {
                flag: "admission-wait-ms",
                ..
            })
        ));
        let config = parse(&[
            "--max-body-bytes",
            "1000",
            "--small-request-bytes",
            "100",
            "--small-reserve-bytes",
            "200",
            "--max-inflight-bytes",
            "1200",
        ])
        .unwrap();
        assert_eq!(config.admission.max_inflight_bytes, 1200);
    }
}
