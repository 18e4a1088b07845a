//! Retrying and waiting with a deadline: what every provider of a remote API needs for
//! errors that clear by themselves (a dependency still being deleted, eventual consistency
//! right after a create, throttling) and for resources that take time to reach a state.

use std::future::Future;
use std::time::{Duration, Instant};

use super::ProviderError;

/// How long to keep retrying or waiting, and how often to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitSettings {
    /// The deadline, counted from the first call.
    pub timeout: Duration,
    /// The first delay between calls (retries back off from it, up to ten times it).
    pub poll_interval: Duration,
}

/// Runs `call` until it succeeds, fails with an error `retryable` refuses, or the next try
/// would start past the deadline (then its last error is returned). The delay doubles from
/// the poll interval, with up to 50% jitter, capped at ten times the poll interval.
pub async fn with_retries<T, F, Fut>(
    settings: WaitSettings,
    retryable: impl Fn(&ProviderError) -> bool,
    mut call: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let deadline = Instant::now() + settings.timeout;
    let base = settings.poll_interval;
    let mut delay = base;
    loop {
        match call().await {
            Err(e) if retryable(&e) && Instant::now() + delay < deadline => {
                let jitter = delay.mul_f64(rand::random::<f64>() * 0.5);
                tokio::time::sleep(delay + jitter).await;
                delay = (delay * 2).min(base * 10);
            }
            other => return other,
        }
    }
}

/// Polls `probe` until it returns `Some`, or fails with code `Timeout` after the deadline,
/// naming `what` did not happen.
pub async fn wait_for<T, F, Fut>(
    settings: WaitSettings,
    what: &str,
    mut probe: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ProviderError>>,
{
    let deadline = Instant::now() + settings.timeout;
    loop {
        if let Some(done) = probe().await? {
            return Ok(done);
        }
        if Instant::now() >= deadline {
            return Err(ProviderError::with_code(
                "Timeout",
                format!(
                    "{what} did not happen within {}",
                    humantime::format_duration(settings.timeout)
                ),
            ));
        }
        tokio::time::sleep(settings.poll_interval).await;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn settings(wait_ms: u64) -> WaitSettings {
        WaitSettings {
            timeout: Duration::from_millis(wait_ms),
            poll_interval: Duration::from_millis(1),
        }
    }

    fn error(code: &str) -> ProviderError {
        ProviderError::with_code(code, "from the API")
    }

    fn transient(e: &ProviderError) -> bool {
        e.code.as_deref() == Some("DependencyViolation")
    }

    #[tokio::test]
    async fn retryable_errors_are_retried_until_they_clear() {
        let calls = Cell::new(0);
        let result = with_retries(settings(5_000), transient, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(error("DependencyViolation"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result, Ok(3));
    }

    #[tokio::test]
    async fn other_errors_fail_at_once_and_retries_stop_at_the_deadline() {
        let calls = Cell::new(0);
        let result: Result<(), _> = with_retries(settings(5_000), transient, || {
            calls.set(calls.get() + 1);
            async { Err(error("InvalidParameterValue")) }
        })
        .await;
        assert_eq!(
            (result.unwrap_err().code.as_deref(), calls.get()),
            (Some("InvalidParameterValue"), 1)
        );

        let result: Result<(), _> = with_retries(settings(30), transient, || async {
            Err(error("DependencyViolation"))
        })
        .await;
        assert_eq!(
            result.unwrap_err().to_string(),
            "DependencyViolation: from the API",
            "the last error is returned"
        );
    }

    #[tokio::test]
    async fn waiting_gives_up_after_the_timeout_naming_what_it_waited_for() {
        let result: Result<(), _> = wait_for(
            settings(20),
            "instance i-1 reaching state running",
            || async { Ok(None) },
        )
        .await;
        let err = result.unwrap_err();
        assert_eq!(err.code.as_deref(), Some("Timeout"));
        assert_eq!(
            err.message,
            "instance i-1 reaching state running did not happen within 20ms"
        );
    }
}
