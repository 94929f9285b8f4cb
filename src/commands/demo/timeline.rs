//! What the demo did and saw, step by step, as text or JSON.

use std::time::Instant;

use serde::Serialize;

/// One step: what the demo did, what the contract says should happen, and
/// what the broker and the deployer did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub number: usize,
    /// Milliseconds since the demo started, when the step began.
    pub at_ms: u128,
    /// How long the step took, waiting for the broker and deployer included.
    pub duration_ms: u128,
    pub action: String,
    pub expected: String,
    pub observed: Vec<String>,
    pub ok: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    #[serde(skip)]
    started: Instant,
    #[serde(skip)]
    echo: bool,
    pub steps: Vec<Step>,
}

impl Timeline {
    /// A timeline that prints each step as it ends when `echo` is set.
    pub fn new(echo: bool) -> Self {
        Self {
            started: Instant::now(),
            echo,
            steps: Vec::new(),
        }
    }

    pub fn elapsed_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }

    /// Records a step that began at `began` (from [`Timeline::elapsed_ms`]).
    pub fn record(&mut self, began: u128, action: String, expected: String, observed: Vec<String>, ok: bool) {
        let step = Step {
            number: self.steps.len() + 1,
            at_ms: began,
            duration_ms: self.elapsed_ms() - began,
            action,
            expected,
            observed,
            ok,
        };
        if self.echo {
            print_step(&step);
        }
        self.steps.push(step);
    }

    pub fn all_ok(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }
}

fn print_step(step: &Step) {
    let verdict = if step.ok { "ok" } else { "UNEXPECTED" };
    println!(
        "[{:>2}] {:>6} ms  {}  ({} ms, {verdict})",
        step.number, step.at_ms, step.action, step.duration_ms
    );
    println!("       expected: {}", step.expected);
    for line in &step.observed {
        println!("       {line}");
    }
}
