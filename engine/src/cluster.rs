//! Scale-out on Apache DataFusion Ballista (`--cluster`).
//!
//! fairway does not run its own cluster: with `fairway.cluster` set, a
//! session hands the DataFusion state it plans with (tables, settings, the
//! `TournamentJoins` optimizer rule and the `StandardUsingJoins` analyzer
//! rule) to Ballista's client, which optimizes each statement there and
//! submits the optimized logical plan to a Ballista scheduler. The
//! scheduler plans it physically, cuts it into its own stages and runs them
//! on its executors; fairway's stage engine, scheduler and shuffle are not
//! used. `standalone` starts Ballista's scheduler and one executor in this
//! process (for tests and demos); `df://HOST:PORT` connects to a running
//! `ballista-scheduler`.
//!
//! Pools still apply, at job level: [`fairway_scheduler::JobAdmission`]
//! bounds how many statements of each pool run at once on the cluster.

use std::fmt;
use std::str::FromStr;

use crate::error::{EngineError, Result};

/// The setting that names the cluster.
pub(crate) const CLUSTER_KEY: &str = "fairway.cluster";

/// Where a cluster session sends its work (`--cluster`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterTarget {
    /// Ballista's scheduler and one executor, started in this process.
    Standalone,
    /// A running Ballista scheduler, as `df://HOST:PORT`.
    Remote { host: String, port: u16 },
}

impl ClusterTarget {
    /// The URL Ballista's client connects to (`df://HOST:PORT`).
    pub fn url(&self) -> Option<String> {
        match self {
            ClusterTarget::Standalone => None,
            ClusterTarget::Remote { .. } => Some(self.to_string()),
        }
    }
}

impl fmt::Display for ClusterTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterTarget::Standalone => f.write_str("standalone"),
            ClusterTarget::Remote { host, port } => write!(f, "df://{host}:{port}"),
        }
    }
}

impl FromStr for ClusterTarget {
    type Err = String;

    /// `standalone`, or `df://HOST:PORT` (the port defaults to Ballista's
    /// 50050).
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("standalone") {
            return Ok(ClusterTarget::Standalone);
        }
        let expected = "expected 'standalone' or df://HOST:PORT";
        let rest = s
            .strip_prefix("df://")
            .ok_or_else(|| format!("'{s}': {expected}"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("'{s}': the port '{port}' is not a port number"))?;
                (host, port)
            }
            None => (rest, 50050),
        };
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return Err(format!("'{s}': no host name ({expected})"));
        }
        Ok(ClusterTarget::Remote {
            host: host.to_string(),
            port,
        })
    }
}

/// Parses the value of `fairway.cluster`: empty (no cluster) or a target.
pub(crate) fn parse_cluster(value: &str) -> Result<Option<ClusterTarget>> {
    let value = value.trim().trim_matches('\'');
    if value.is_empty() || value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if !cfg!(feature = "cluster") {
        return Err(EngineError::config(
            CLUSTER_KEY,
            "this fairway was built without the `cluster` cargo feature (Ballista)",
        ));
    }
    value
        .parse()
        .map(Some)
        .map_err(|m| EngineError::config(CLUSTER_KEY, m))
}

/// Turns the session state into a Ballista client context for `target`,
/// with `slots` executor slots when standalone.
#[cfg(feature = "cluster")]
pub(crate) async fn connect(
    target: &ClusterTarget,
    state: datafusion::execution::SessionState,
    slots: usize,
) -> Result<datafusion::prelude::SessionContext> {
    use ballista::prelude::{SessionConfigExt, SessionContextExt};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::SessionContext;

    let mut config = state
        .config()
        .clone()
        .with_ballista_standalone_parallelism(slots)
        .with_ballista_job_name("fairway");
    // Ballista plans and serialises its own physical plans: fairway's
    // KeyPartitionedExec is not one of the operators its codec knows.
    config
        .options_mut()
        .set("fairway.optimizer.co_partitioned_joins", "false")
        .map_err(|e| EngineError::config(CLUSTER_KEY, e.to_string()))?;
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build();
    let connected = match target {
        ClusterTarget::Standalone => SessionContext::standalone_with_state(state).await,
        ClusterTarget::Remote { .. } => {
            let url = target.url().expect("a remote target has a URL");
            SessionContext::remote_with_state(&url, state).await
        }
    };
    connected.map_err(|e| {
        EngineError::config(
            CLUSTER_KEY,
            format!("cannot start a Ballista session on {target}: {e}"),
        )
    })
}

#[cfg(not(feature = "cluster"))]
pub(crate) async fn connect(
    target: &ClusterTarget,
    _state: datafusion::execution::SessionState,
    _slots: usize,
) -> Result<datafusion::prelude::SessionContext> {
    Err(EngineError::config(
        CLUSTER_KEY,
        format!("cannot run on {target}: built without the `cluster` cargo feature"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_errors_name_the_value() {
        assert_eq!(
            "standalone".parse::<ClusterTarget>(),
            Ok(ClusterTarget::Standalone)
        );
        assert_eq!(
            "df://sched.example:50051".parse::<ClusterTarget>(),
            Ok(ClusterTarget::Remote {
                host: "sched.example".to_string(),
                port: 50051
            })
        );
        assert_eq!(
            "df://localhost".parse::<ClusterTarget>().unwrap().url(),
            Some("df://localhost:50050".to_string())
        );
        for (bad, says) in [
            ("http://x:1", "expected 'standalone' or df://HOST:PORT"),
            ("df://x:port", "the port 'port' is not a port number"),
            ("df://:50050", "no host name"),
            ("df://x:0", "not a port number"),
        ] {
            let e = bad.parse::<ClusterTarget>().unwrap_err();
            assert!(e.contains(says) && e.contains(bad), "{bad}: {e}");
        }
        assert_eq!(parse_cluster("").unwrap(), None);
        assert!(
            parse_cluster("nope")
                .unwrap_err()
                .to_string()
                .starts_with("option fairway.cluster:")
        );
    }
}
