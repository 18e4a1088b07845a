//! Kafka's topic name rule, shared by the admin API (a request's name) and the connector (its
//! configured topics): 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.

/// What is wrong with `name` as a topic name, or `None` when Kafka accepts it.
pub fn problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("is empty".to_owned())
    } else if name.len() > 249 {
        Some(format!(
            "has {} characters; at most 249 are allowed",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Some("cannot be `.` or `..`".to_owned())
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .map(|c| format!("contains {c:?}; only a-z, A-Z, 0-9, `.`, `_` and `-` are allowed"))
    }
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn kafkas_rule() {
        assert_eq!(problem("orders.v1_x-y"), None);
        assert_eq!(problem("").as_deref(), Some("is empty"));
        assert_eq!(problem("..").as_deref(), Some("cannot be `.` or `..`"));
        assert_eq!(
            problem("a b").as_deref(),
            Some("contains ' '; only a-z, A-Z, 0-9, `.`, `_` and `-` are allowed")
        );
        assert!(problem(&"x".repeat(250)).is_some_and(|p| p.starts_with("has 250 characters")));
    }
}
