//! `check`: the configuration tried step by step, one line per step.

use anyhow::{Result, bail};

use super::output::Report;
use crate::check::Step;
use crate::config::Config;

/// The steps that ran, each ok or failed with its reason.
pub struct Checked {
    steps: Vec<Step>,
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
