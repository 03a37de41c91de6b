//! What fairway reports about its jobs, without DataFusion: the one typed
//! schema of the event log ([`events`]), the log's writer ([`EventLog`]),
//! the timeline page drawn from a log ([`timeline`]), live console
//! progress ([`ConsoleProgress`]) and the fan-out of scheduler events to
//! several listeners ([`Listeners`]).
//!
//! Everything here listens to [`fairway_scheduler::SchedulerEvent`]s or
//! reads what was written from them; nothing knows about plans or SQL.

mod event_log;
pub mod events;
mod listeners;
pub mod progress;
pub mod timeline;

pub use event_log::EventLog;
pub use events::Event;
pub use listeners::Listeners;
pub use progress::ConsoleProgress;
