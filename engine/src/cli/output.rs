//! The one place where a command's report reaches stdout: its text for
//! people, or with `--json` its JSON for machines. Logs and live progress
//! go to stderr, so stdout holds the report alone.

use anyhow::Result;
use serde::Serialize;

/// What a command did, as it is printed.
pub trait Report {
    /// What a person reads, every line ending in a newline.
    fn text(&self) -> String;

    /// What `--json` prints instead. A report without a JSON form prints
    /// its text under `--json` too.
    fn json(&self) -> Result<String> {
        Ok(self.text())
    }

    /// How the command ends once its report is printed: a run that failed
    /// part-way and checks that did not pass still print what they did.
    fn outcome(self) -> Result<()>
    where
        Self: Sized,
    {
        Ok(())
    }
}

/// The `--json` form of a serializable report: pretty JSON, one newline.
pub fn pretty(value: &impl Serialize) -> Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// Stdout of one command, text or JSON.
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Prints the report a command ends with, then ends as the report says.
    pub fn print(&self, report: impl Report) -> Result<()> {
        let printed = if self.json {
            report.json()?
        } else {
            report.text()
        };
        print!("{printed}");
        report.outcome()
    }

    /// A report on the way to the command's last one (the raw data `demo`
    /// generated before its run), printed as soon as it is known. Under
    /// `--json` stdout holds the last report alone, so this one is left out.
    pub fn note(&self, report: &impl Report) {
        if !self.json {
            print!("{}", report.text());
        }
    }
}
