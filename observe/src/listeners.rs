//! Several scheduler listeners behind the scheduler's one listener slot.

use std::sync::Arc;

use fairway_scheduler::{SchedulerEvent, SchedulerListener};

/// Hands every event to each listener, in order.
pub struct Listeners(pub Vec<Arc<dyn SchedulerListener>>);

impl SchedulerListener for Listeners {
    fn on_event(&self, event: &SchedulerEvent) {
        for listener in &self.0 {
            listener.on_event(event);
        }
    }
}
