//! Rules that a session setting turns on and off.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;

/// Says whether the rule is on for a given session's settings.
pub type RuleSwitch = Arc<dyn Fn(&ConfigOptions) -> bool + Send + Sync>;

/// Declares an optimizer rule's struct (the documentation given, one
/// `enabled: RuleSwitch` field), its `Debug` (the rule's name), its
/// `Default` (on for every session) and `with_switch`.
macro_rules! switched_rule {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name {
            enabled: $crate::switch::RuleSwitch,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($name))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::with_switch(std::sync::Arc::new(|_| true))
            }
        }

        impl $name {
            /// The rule, on where `enabled` says so for the session's
            /// settings.
            pub fn with_switch(enabled: $crate::switch::RuleSwitch) -> Self {
                Self { enabled }
            }
        }
    };
}

pub(crate) use switched_rule;
