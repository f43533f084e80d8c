//! Job ids. Every snapshot records the job id that committed it, so a re-run
//! of the id commits nothing; the id also goes into data file names and,
//! through `medallion deploy`, into Kubernetes names and labels.

const MAX_LEN: usize = 128;

/// Checks a job id where it enters (`--job-id`): 1 to 128 of the
/// characters `[A-Za-z0-9._:-]`. Dates (`2026-11-29`), names (`load-2`) and
/// timestamps (`2026-11-29T12:00:00Z`) fit; so do file names, and
/// `deploy` hashes what a Kubernetes label does not take (`:`).
pub fn parse_job_id(text: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    let problem = if text.is_empty() {
        "it is empty".to_string()
    } else if text.chars().count() > MAX_LEN {
        format!("it has {} characters", text.chars().count())
    } else if let Some(c) = text.chars().find(|&c| !allowed(c)) {
        format!("it contains {c:?}")
    } else {
        return Ok(text.to_string());
    };
    Err(format!(
        "{problem}; a job id is 1 to {MAX_LEN} characters of A-Za-z0-9._:-, e.g. 2026-11-29 or load-2"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_names_and_timestamps_are_job_ids() {
        for id in [
            "2026-11-29",
            "load-2",
            "demo-sf0.1",
            "2026-11-29T12:00:00Z",
            "run-20261129T120000.123Z",
            "run_7.b",
        ] {
            assert_eq!(parse_job_id(id).as_deref(), Ok(id));
        }
        assert!(parse_job_id(&"x".repeat(MAX_LEN)).is_ok());
    }

    #[test]
    fn empty_long_and_odd_job_ids_are_refused_saying_what_is_allowed() {
        for (id, problem) in [
            ("", "it is empty"),
            ("load 2", "it contains ' '"),
            ("a/b", "it contains '/'"),
            ("tag\n", "it contains '\\n'"),
        ] {
            let error = parse_job_id(id).unwrap_err();
            assert!(error.starts_with(problem), "{id:?}: {error}");
            assert!(error.contains("A-Za-z0-9._:-"), "{error}");
        }
        let error = parse_job_id(&"x".repeat(MAX_LEN + 1)).unwrap_err();
        assert!(error.starts_with("it has 129 characters"), "{error}");
    }
}
