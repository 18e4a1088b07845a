//! Creates that never make a second object.
//!
//! Most EC2 and IAM creates are not idempotent: sent twice, they make two VPCs, or the second
//! answers "already exists". So the SDK never re-sends them (they go through the provider's
//! retry-less clients), and [`create_once`] decides what happens when an answer is lost:
//!
//! - refused (a 4xx): nothing was made. Throttling and the errors that clear by themselves
//!   (a dependency AWS does not show yet) are sent again after a pause; the rest are the
//!   answer.
//! - "already exists": the object is looked up; it is adopted if this stack owns it (its
//!   ownership tags, or exactly the rule or route asked for), otherwise the error says so.
//! - lost (closed connection, timeout, a 5xx): the object is looked up until the
//!   consistency window after the send has passed (AWS may not show a new object at once);
//!   found, it is adopted; not found, the create is sent again while attempts remain. When
//!   they run out the error stays *outcome unknown*, and the engine keeps the create pending
//!   so that the next run looks again.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use iac_core::ProviderError;
use iac_core::provider::ownership::STACK_TAG;

use crate::Aws;

/// "Already exists" answers: the name, the rule or the route is taken.
const DUPLICATE_CODES: &[&str] = &[
    "InvalidKeyPair.Duplicate",
    "InvalidGroup.Duplicate",
    "InvalidPermission.Duplicate",
    "RouteAlreadyExists",
    "Resource.AlreadyAssociated",
    "EntityAlreadyExists",
];

/// Whether AWS answered that what the call would make already exists.
pub(crate) fn is_duplicate(error: &ProviderError) -> bool {
    error
        .code
        .as_deref()
        .is_some_and(|code| DUPLICATE_CODES.contains(&code))
}

/// Whose name a create claims: the stack, and the command that removes an object of that
/// name made outside it.
pub(crate) struct Holder<'a> {
    pub(crate) stack: &'a str,
    pub(crate) removal: Option<String>,
}

/// Sends `make` so that a lost answer never makes a second object (see the module
/// documentation); `find` looks up what an earlier send made. Returns the id.
pub(crate) async fn create_once<M, MF, F, FF>(
    aws: &Aws,
    holder: Holder<'_>,
    mut make: M,
    mut find: F,
) -> Result<String, ProviderError>
where
    M: FnMut() -> MF,
    MF: Future<Output = Result<String, ProviderError>>,
    F: FnMut() -> FF,
    FF: Future<Output = Result<Option<String>, ProviderError>>,
{
    let attempts = aws.settings.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let sent = SystemTime::now();
        let error = match crate::with_retries(&aws.settings, &mut make).await {
            Ok(id) => return Ok(id),
            Err(error) => error,
        };
        if is_duplicate(&error) {
            return match find().await? {
                Some(ours) => Ok(ours),
                None => Err(conflict(error, &holder)),
            };
        }
        if error.refused {
            return Err(error);
        }
        if let Some(made) = look_until(aws, sent, &mut find).await? {
            return Ok(made);
        }
        if attempt >= attempts {
            return Err(error);
        }
        attempt += 1;
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// Runs `find` until it finds something, or until the consistency window after `since` has
/// passed (then `None`: it was not made).
pub(crate) async fn look_until<T, F, FF>(
    aws: &Aws,
    since: SystemTime,
    mut find: F,
) -> Result<Option<T>, ProviderError>
where
    F: FnMut() -> FF,
    FF: Future<Output = Result<Option<T>, ProviderError>>,
{
    let waited = SystemTime::now().duration_since(since).unwrap_or_default();
    let deadline = Instant::now() + aws.settings.consistency_window.saturating_sub(waited);
    loop {
        if let Some(found) = find().await? {
            return Ok(Some(found));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(aws.settings.poll_interval).await;
    }
}

/// The "already exists" answer for an object this stack does not own.
fn conflict(error: ProviderError, holder: &Holder<'_>) -> ProviderError {
    let remove = match &holder.removal {
        Some(command) => format!("remove it (`{command}`)"),
        None => "remove it".to_owned(),
    };
    let message = format!(
        "{}: it was not made by stack `{}` (it lacks the `{STACK_TAG}` tag of this stack): {remove}, or give this resource another name",
        error.message, holder.stack
    );
    let mut conflict = ProviderError::new(message).refused();
    conflict.code = error.code;
    conflict
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * 2u64.pow(attempt.min(6)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::AwsSettings;

    fn aws(max_attempts: u32) -> Aws {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let settings = AwsSettings {
            max_attempts,
            poll_interval: Duration::from_millis(5),
            wait_timeout: Duration::from_millis(100),
            consistency_window: Duration::from_millis(60),
            ..AwsSettings::default()
        };
        crate::AwsProvider::with_sdk_config(&config, settings).aws
    }

    fn dev() -> Holder<'static> {
        Holder {
            stack: "dev",
            removal: Some("aws ec2 delete-key-pair --key-name k".to_owned()),
        }
    }

    fn lost() -> ProviderError {
        ProviderError::new("CreateVpc: connection closed")
    }

    #[tokio::test]
    async fn a_lost_answer_is_looked_for_and_what_it_made_is_adopted() {
        let (sent, looked) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let id = create_once(
            &aws(5),
            dev(),
            || async {
                sent.fetch_add(1, Ordering::SeqCst);
                Err(lost())
            },
            // Visible on the third look only, as after a create AWS shows late.
            || async {
                Ok((looked.fetch_add(1, Ordering::SeqCst) >= 2).then(|| "vpc-1".to_owned()))
            },
        )
        .await
        .unwrap();
        assert_eq!(id, "vpc-1");
        assert_eq!(sent.load(Ordering::SeqCst), 1, "never sent twice");
    }

    #[tokio::test]
    async fn a_create_that_made_nothing_is_sent_again_after_the_window() {
        let sent = AtomicUsize::new(0);
        let id = create_once(
            &aws(3),
            dev(),
            || async {
                match sent.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(lost()),
                    _ => Ok("vpc-2".to_owned()),
                }
            },
            || async { Ok(None) },
        )
        .await
        .unwrap();
        assert_eq!((id.as_str(), sent.load(Ordering::SeqCst)), ("vpc-2", 2));
    }

    #[tokio::test]
    async fn attempts_run_out_with_the_outcome_still_unknown() {
        let error = create_once(
            &aws(1),
            dev(),
            || async { Err(lost()) },
            || async { Ok(None) },
        )
        .await
        .unwrap_err();
        assert!(!error.refused, "the engine must keep the create pending");
    }

    #[tokio::test]
    async fn already_exists_adopts_what_the_stack_owns_and_names_what_it_does_not() {
        let duplicate = || async {
            Err::<String, _>(
                ProviderError::with_code(
                    "InvalidKeyPair.Duplicate",
                    "The keypair 'k' already exists.",
                )
                .refused(),
            )
        };
        let adopted = create_once(&aws(1), dev(), duplicate, || async {
            Ok(Some("key-1".to_owned()))
        })
        .await
        .unwrap();
        assert_eq!(adopted, "key-1");
        let error = create_once(&aws(1), dev(), duplicate, || async { Ok(None) })
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "InvalidKeyPair.Duplicate: The keypair 'k' already exists.: it was not made by stack `dev` (it lacks the `iac:stack` tag of this stack): remove it (`aws ec2 delete-key-pair --key-name k`), or give this resource another name"
        );
        assert!(error.refused);
    }

    #[tokio::test]
    async fn a_refusal_is_the_answer_and_nothing_is_looked_up() {
        let looked = AtomicUsize::new(0);
        let error = create_once(
            &aws(5),
            dev(),
            || async { Err(ProviderError::with_code("InvalidParameterValue", "bad").refused()) },
            || async {
                looked.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            },
        )
        .await
        .unwrap_err();
        assert_eq!(error.code.as_deref(), Some("InvalidParameterValue"));
        assert_eq!(looked.load(Ordering::SeqCst), 0);
    }
}
