//! `check`: the configuration tried step by step, one line per step.

use anyhow::{Result, bail};
use serde::Serialize;

use super::output::{Report, pretty};
use crate::check::Step;
use crate::config::Config;

/// The steps that ran, each ok or failed with its reason.
pub struct Checked {
    steps: Vec<Step>,
}

/// `check --json`: whether every step passed, and each step's line.
#[derive(Serialize)]
struct CheckJson {
    ok: bool,
    steps: Vec<StepJson>,
}

/// One step: what it found when ok, why it failed otherwise.
#[derive(Serialize)]
struct StepJson {
    name: &'static str,
    ok: bool,
    message: String,
    millis: u128,
}

impl Report for Checked {
    fn text(&self) -> String {
        let mut text = String::new();
        for step in &self.steps {
            text.push_str(&match &step.outcome {
                Ok(message) => format!("ok    {:<12} {message} ({} ms)\n", step.name, step.millis),
                Err(e) => format!(
                    "FAIL  {:<12} {} ({} ms)\n",
                    step.name,
                    crate::errors::one_line(e),
                    step.millis
                ),
            });
        }
        text
    }

    fn json(&self) -> Result<String> {
        let steps: Vec<StepJson> = self
            .steps
            .iter()
            .map(|step| StepJson {
                name: step.name,
                ok: step.outcome.is_ok(),
                message: match &step.outcome {
                    Ok(message) => message.clone(),
                    Err(e) => crate::errors::one_line(e),
                },
                millis: step.millis,
            })
            .collect();
        pretty(&CheckJson {
            ok: steps.iter().all(|s| s.ok),
            steps,
        })
    }

    fn outcome(self) -> Result<()> {
        let failed = self.steps.iter().filter(|s| s.outcome.is_err()).count();
        if failed > 0 {
            bail!("{failed} of {} checks failed", self.steps.len());
        }
        Ok(())
    }
}

pub async fn check(config: &Config) -> Checked {
    Checked {
        steps: crate::check::check(config).await,
    }
}
