//! Kubernetes names and label values made from job names and job ids.
//!
//! A Job's name also becomes its pods' `job-name` label, so both are held
//! to the label rules: at most 63 characters of `[a-z0-9-]` for names and
//! `[A-Za-z0-9._-]` for label values, alphanumeric at both ends. A value
//! that has to be shortened or changed keeps a hash of the original, so two
//! different job ids never share a name.

const MAX_LABEL: usize = 63;

/// `bronze_orders` + `2026-11-29` → `bronze-orders-2026-11-29`. A job id
/// that is not already lowercase letters, digits and `-` gets a hash, so
/// `Run-1` and `run-1` stay two Jobs.
pub fn job_resource_name(job_name: &str, job_id: &str) -> String {
    let is_dns = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let job_part = clean(&job_name.to_ascii_lowercase(), is_dns);
    let id_part = clean(&job_id.to_ascii_lowercase(), is_dns);
    let name = format!("{job_part}-{id_part}");
    if id_part == job_id && name.len() <= MAX_LABEL {
        return name;
    }
    fit(
        &format!("{job_name}-{job_id}"),
        name.to_ascii_lowercase(),
        true,
    )
}

/// A job id as a label value (`medallion/job-id`), for selecting its Jobs
/// and pods. The exact id is kept in the `medallion/job-id` annotation.
pub fn label_value(value: &str) -> String {
    let cleaned = clean(value, |c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
    fit(value, cleaned, false)
}

/// Keeps allowed characters, turns runs of others into one `-`, and trims
/// separators from both ends.
fn clean(value: &str, allowed: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if allowed(c) {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The cleaned value when it is the original and short enough (or
/// `changed` is false and it is short enough); otherwise a prefix of it and
/// a hash of the original.
fn fit(original: &str, cleaned: String, changed: bool) -> String {
    if !changed && cleaned == original && cleaned.len() <= MAX_LABEL {
        return cleaned;
    }
    let hash = format!("{:08x}", fnv1a(original) as u32);
    let keep = MAX_LABEL - hash.len() - 1;
    let prefix: String = cleaned.chars().take(keep).collect();
    let prefix = prefix.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// FNV-1a: stable across builds and platforms, unlike std's hasher.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_dns_label(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    }

    #[test]
    fn plain_names_stay_readable() {
        assert_eq!(
            job_resource_name("bronze_orders", "2026-11-29"),
            "bronze-orders-2026-11-29"
        );
        assert_eq!(label_value("2026-11-29"), "2026-11-29");
        assert_eq!(label_value("run_7.b"), "run_7.b");
    }

    #[test]
    fn changed_or_long_values_keep_a_hash_of_the_original() {
        let a = label_value("2026-11-29T10:00:00Z");
        let b = label_value("2026-11-29T10-00-00Z");
        assert_ne!(a, b, "ids that clean to the same text must differ");
        assert!(a.starts_with("2026-11-29T10-00-00Z-"), "{a}");

        let long = "x".repeat(200);
        let name = job_resource_name("silver_orders", &long);
        assert!(is_dns_label(&name), "{name}");
        assert_ne!(name, job_resource_name("silver_orders", &"x".repeat(199)));
        assert!(is_dns_label(&job_resource_name(
            "Gold_Dash",
            "ID/With Spaces"
        )));
        assert!(is_dns_label(&job_resource_name("_", "::")));
    }
}
