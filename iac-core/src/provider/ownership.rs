//! Ownership tags: every resource a provider can tag carries the stack and the resource name
//! that own it, so an interrupted create can be found again and nothing of another stack is
//! ever adopted. A `Name` tag defaults to `<stack>-<resource>`.

use std::collections::BTreeMap;

/// The tag naming the stack that owns a resource.
pub const STACK_TAG: &str = "iac:stack";
/// The tag naming the resource within its stack.
pub const RESOURCE_TAG: &str = "iac:resource";
/// The display-name tag.
pub const NAME_TAG: &str = "Name";

/// The `Name` tag when the user gives none: `<stack>-<resource>`.
pub fn default_name(stack: &str, name: &str) -> String {
    format!("{stack}-{name}")
}

/// Every tag a resource carries: the user's, `Name`, and the ownership tags.
pub fn all_tags(
    stack: &str,
    name: &str,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut tags = user.clone();
    tags.entry(NAME_TAG.to_owned())
        .or_insert_with(|| default_name(stack, name));
    tags.insert(STACK_TAG.to_owned(), stack.to_owned());
    tags.insert(RESOURCE_TAG.to_owned(), name.to_owned());
    tags
}

/// The user's tags among what the cloud reports (ownership tags and a default `Name`
/// removed), so a read compares equal to the program's inputs.
pub fn user_tags<'t>(
    stack: &str,
    name: &str,
    reported: impl IntoIterator<Item = (&'t str, &'t str)>,
) -> BTreeMap<String, String> {
    let default = default_name(stack, name);
    reported
        .into_iter()
        .filter(|(k, v)| {
            *k != STACK_TAG && *k != RESOURCE_TAG && !(*k == NAME_TAG && *v == default)
        })
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Whether the reported tags say `stack` owns the resource `name` (only such an object is
/// ever adopted).
pub fn is_owned<'t>(
    stack: &str,
    name: &str,
    reported: impl IntoIterator<Item = (&'t str, &'t str)>,
) -> bool {
    let (mut stack_tag, mut resource_tag) = (false, false);
    for (k, v) in reported {
        stack_tag |= k == STACK_TAG && v == stack;
        resource_tag |= k == RESOURCE_TAG && v == name;
    }
    stack_tag && resource_tag
}

/// Why an object with the `reported` tags cannot be imported as this stack's resource
/// `name`: another stack, or another resource of this one, owns it. `None`: it may be.
pub fn import_refusal<'t>(
    stack: &str,
    name: &str,
    reported: impl IntoIterator<Item = (&'t str, &'t str)>,
) -> Option<String> {
    let (mut owner_stack, mut owner) = (None, None);
    for (k, v) in reported {
        match k {
            STACK_TAG => owner_stack = Some(v),
            RESOURCE_TAG => owner = Some(v),
            _ => {}
        }
    }
    match (owner_stack, owner) {
        (Some(other), _) if other != stack => Some(format!(
            "it belongs to stack `{other}` (its `{STACK_TAG}` tag): import only what no other stack owns"
        )),
        (Some(_), Some(other)) if other != name => Some(format!(
            "it is this stack's `{other}` (its `{RESOURCE_TAG}` tag)"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_is_refused_for_what_another_stack_or_resource_owns() {
        let tags =
            |stack: &'static str, name: &'static str| [(STACK_TAG, stack), (RESOURCE_TAG, name)];
        assert_eq!(import_refusal("dev", "vpc", tags("dev", "vpc")), None);
        assert_eq!(import_refusal("dev", "vpc", [("team", "data")]), None);
        assert_eq!(
            import_refusal("dev", "vpc", tags("prod", "vpc")).as_deref(),
            Some(
                "it belongs to stack `prod` (its `iac:stack` tag): import only what no other stack owns"
            )
        );
        assert_eq!(
            import_refusal("dev", "vpc", tags("dev", "network")).as_deref(),
            Some("it is this stack's `network` (its `iac:resource` tag)")
        );
    }

    #[test]
    fn user_tags_round_trip_through_all_tags() {
        let user = BTreeMap::from([("team".to_owned(), "data".to_owned())]);
        let all = all_tags("dev", "vpc", &user);
        assert_eq!(all.get("Name").map(String::as_str), Some("dev-vpc"));
        let reported = all.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        assert_eq!(user_tags("dev", "vpc", reported), user);

        let named = BTreeMap::from([("Name".to_owned(), "mine".to_owned())]);
        let all = all_tags("dev", "vpc", &named);
        let reported = all.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        assert_eq!(
            user_tags("dev", "vpc", reported),
            named,
            "a Name of the user's is kept"
        );
    }

    #[test]
    fn only_both_ownership_tags_of_this_stack_and_resource_own() {
        let all = all_tags("dev", "key", &BTreeMap::new());
        let reported = || all.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        assert!(is_owned("dev", "key", reported()));
        assert!(!is_owned("prod", "key", reported()));
        assert!(!is_owned("dev", "other", reported()));
        assert!(!is_owned("dev", "key", [("Name", "dev-key")]));
    }
}
