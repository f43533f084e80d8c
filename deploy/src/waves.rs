//! ArgoCD sync waves from the pipeline's table dependencies.
//!
//! All Jobs of a run are committed at once. ArgoCD applies a sync wave only
//! when every resource of the waves before it is healthy, and a Job is
//! healthy once it has succeeded; so a job whose wave is one more than the
//! jobs that write its input tables starts only after they committed.

use std::collections::HashMap;

use anyhow::{Result, bail};

use crate::job::JobDescription;

/// The wave of each job, in the order given: 0 for jobs that read only raw
/// files or tables written outside this run, else one more than the
/// highest wave among the jobs writing the tables it reads.
pub fn sync_waves(jobs: &[JobDescription]) -> Result<Vec<u32>> {
    let writer: HashMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| (job.target_table.as_str(), i))
        .collect();
    let mut waves: Vec<Option<u32>> = vec![None; jobs.len()];
    for start in 0..jobs.len() {
        wave_of(start, jobs, &writer, &mut waves, &mut Vec::new())?;
    }
    Ok(waves.into_iter().map(|w| w.unwrap_or(0)).collect())
}

fn wave_of(
    index: usize,
    jobs: &[JobDescription],
    writer: &HashMap<&str, usize>,
    waves: &mut Vec<Option<u32>>,
    path: &mut Vec<usize>,
) -> Result<u32> {
    if let Some(wave) = waves[index] {
        return Ok(wave);
    }
    if path.contains(&index) {
        let cycle: Vec<&str> = path.iter().map(|&i| jobs[i].name.as_str()).collect();
        bail!(
            "jobs depend on each other in a cycle: {} -> {}",
            cycle.join(" -> "),
            jobs[index].name
        );
    }
    path.push(index);
    let mut wave = 0;
    for table in &jobs[index].reads {
        if let Some(&producer) = writer.get(table.as_str())
            && producer != index
        {
            wave = wave.max(wave_of(producer, jobs, writer, waves, path)? + 1);
        }
    }
    path.pop();
    waves[index] = Some(wave);
    Ok(wave)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, target: &str, reads: &[&str]) -> JobDescription {
        JobDescription {
            name: name.into(),
            layer: target.split('.').next().unwrap().into(),
            target_table: target.into(),
            reads: reads.iter().map(|s| s.to_string()).collect(),
            spec_in_image: String::new(),
            shards: None,
        }
    }

    #[test]
    fn waves_follow_table_dependencies() {
        let jobs = [
            job("bronze_orders", "bronze.orders", &[]),
            job(
                "silver_orders",
                "silver.orders",
                &["bronze.orders", "silver.customers"],
            ),
            job(
                "silver_customers",
                "silver.customers",
                &["bronze.customers"],
            ),
            job("gold", "gold.dash", &["silver.orders"]),
            // Reads a table no job of this run writes: it can start at once.
            job("append", "bronze.more", &["bronze.customers"]),
        ];
        assert_eq!(sync_waves(&jobs).unwrap(), vec![0, 1, 0, 2, 0]);
    }

    #[test]
    fn a_cycle_is_named() {
        let jobs = [job("a", "x.a", &["x.b"]), job("b", "x.b", &["x.a"])];
        let err = sync_waves(&jobs).unwrap_err().to_string();
        assert!(err.contains("a -> b -> a"), "{err}");
    }
}
