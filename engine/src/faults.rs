//! Test-only fault injection: makes chosen task attempts fail, so that tests
//! can show that retries and recomputation give the same answers as a run
//! without failures.
//!
//! Set with `fairway.test.fail_tasks` (a list of task patterns) and
//! `fairway.test.fail_probability` with `fairway.test.fail_seed` (every task
//! attempt fails with that probability, decided by a hash of the seed and
//! the attempt, so a run is repeatable). Not meant for production use.

use std::fmt;

/// One pattern of `fairway.test.fail_tasks`: a field left out matches any
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskPattern {
    pub stage: Option<usize>,
    pub partition: Option<usize>,
    pub attempt: Option<u32>,
}

impl TaskPattern {
    fn matches(&self, stage: usize, partition: usize, attempt: u32) -> bool {
        self.stage.is_none_or(|s| s == stage)
            && self.partition.is_none_or(|p| p == partition)
            && self.attempt.is_none_or(|a| a == attempt)
    }
}

impl fmt::Display for TaskPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(s) = self.stage {
            parts.push(format!("stage={s}"));
        }
        if let Some(p) = self.partition {
            parts.push(format!("partition={p}"));
        }
        if let Some(a) = self.attempt {
            parts.push(format!("attempt={a}"));
        }
        if parts.is_empty() {
            f.write_str("any")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

/// Which task attempts fail on purpose (empty: none).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultInjection {
    /// Attempts matching any of these fail.
    pub tasks: Vec<TaskPattern>,
    /// Every other attempt fails with this probability (0 to 1).
    pub probability: f64,
    /// Seed of the probabilistic failures.
    pub seed: u64,
    /// Map tasks whose output is deleted right after it was written
    /// (`fairway.test.lose_map_outputs`): its data file, or the in-memory
    /// output.
    pub lose_outputs: Vec<TaskPattern>,
    /// Map tasks whose spilled data file gets garbage in the middle right
    /// after it was written (`fairway.test.corrupt_map_outputs`; outputs
    /// kept in memory are left alone).
    pub corrupt_outputs: Vec<TaskPattern>,
}

/// What happens to a map task's output once written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFault {
    Lose,
    Corrupt,
}

impl FaultInjection {
    /// Parses `stage=1,partition=0,attempt=0;stage=2;...` (`;` between
    /// patterns, `,` between fields; `any` or an empty text matches every
    /// task, so `attempt=0` fails every first attempt).
    pub fn parse_tasks(text: &str) -> Result<Vec<TaskPattern>, String> {
        let mut patterns = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let mut pattern = TaskPattern::default();
            if part != "any" {
                for field in part.split(',').map(str::trim) {
                    let (key, value) = field
                        .split_once('=')
                        .ok_or_else(|| format!("expected KEY=NUMBER in '{part}', got '{field}'"))?;
                    let number = |v: &str| {
                        v.trim()
                            .parse::<u64>()
                            .map_err(|_| format!("'{}' is not a number in '{part}'", v.trim()))
                    };
                    match key.trim() {
                        "stage" => pattern.stage = Some(number(value)? as usize),
                        "partition" => pattern.partition = Some(number(value)? as usize),
                        "attempt" => pattern.attempt = Some(number(value)? as u32),
                        other => {
                            return Err(format!(
                                "unknown field '{other}' in '{part}' (expected stage, partition, attempt)"
                            ));
                        }
                    }
                }
            }
            patterns.push(pattern);
        }
        Ok(patterns)
    }

    pub fn is_active(&self) -> bool {
        !self.tasks.is_empty()
            || self.probability > 0.0
            || !self.lose_outputs.is_empty()
            || !self.corrupt_outputs.is_empty()
    }

    /// What to do to the output a map task attempt just wrote.
    pub fn output_fault(
        &self,
        stage: usize,
        partition: usize,
        attempt: u32,
    ) -> Option<OutputFault> {
        let hit = |patterns: &[TaskPattern]| {
            patterns
                .iter()
                .any(|p| p.matches(stage, partition, attempt))
        };
        if hit(&self.lose_outputs) {
            Some(OutputFault::Lose)
        } else if hit(&self.corrupt_outputs) {
            Some(OutputFault::Corrupt)
        } else {
            None
        }
    }

    /// Whether this attempt of `job` must fail, and why (the error text).
    pub fn failure(
        &self,
        job: u64,
        stage: usize,
        partition: usize,
        attempt: u32,
    ) -> Option<String> {
        if let Some(pattern) = self
            .tasks
            .iter()
            .find(|p| p.matches(stage, partition, attempt))
        {
            return Some(format!(
                "injected failure (fairway.test.fail_tasks '{pattern}') in stage {stage} partition {partition} attempt {attempt}"
            ));
        }
        if self.probability > 0.0 {
            let mut h = self.seed;
            for value in [job, stage as u64, partition as u64, u64::from(attempt)] {
                h = splitmix64(h ^ value);
            }
            // The top 53 bits as a number in [0, 1).
            let draw = (h >> 11) as f64 / (1u64 << 53) as f64;
            if draw < self.probability {
                return Some(format!(
                    "injected failure (fairway.test.fail_probability {}) in stage {stage} partition {partition} attempt {attempt}",
                    self.probability
                ));
            }
        }
        None
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_and_match() {
        let tasks =
            FaultInjection::parse_tasks("stage=1,partition=0,attempt=0; attempt=2").unwrap();
        let faults = FaultInjection {
            tasks,
            ..FaultInjection::default()
        };
        assert!(faults.failure(1, 1, 0, 0).is_some());
        assert!(faults.failure(1, 1, 0, 1).is_none());
        assert!(faults.failure(1, 1, 1, 0).is_none());
        assert!(
            faults.failure(7, 5, 3, 2).is_some(),
            "attempt=2 matches any task"
        );
        assert!(FaultInjection::parse_tasks("stage=x").is_err());
        assert!(FaultInjection::parse_tasks("job=1").is_err());
        assert!(FaultInjection::parse_tasks("stage").is_err());
        assert_eq!(FaultInjection::parse_tasks("any").unwrap().len(), 1);
    }

    #[test]
    fn probability_is_seeded_and_roughly_right() {
        let faults = FaultInjection {
            probability: 0.25,
            seed: 42,
            ..FaultInjection::default()
        };
        let fails = (0..4000)
            .filter(|&p| faults.failure(1, 0, p, 0).is_some())
            .count();
        assert!((800..1200).contains(&fails), "{fails} of 4000");
        let again = (0..4000)
            .filter(|&p| faults.failure(1, 0, p, 0).is_some())
            .count();
        assert_eq!(fails, again, "same seed, same failures");
        let other = FaultInjection {
            seed: 43,
            ..faults.clone()
        };
        assert!(
            (0..64).any(
                |p| faults.failure(1, 0, p, 0).is_some() != other.failure(1, 0, p, 0).is_some()
            )
        );
    }
}
