//! The case engine's pure core: routing by the ownership list, deadlines on the working
//! calendar, the case a new event opens, and the workflow of the closed loop. No I/O; the
//! ingest path and the case actions drive it.

pub mod areas;
pub mod calendar;
pub mod case;
pub mod correlate;
pub mod deadline;
pub mod deferral;
pub mod ingest;
pub mod routing;
pub mod summary;
pub mod tally;
pub mod workflow;

pub use areas::{AreaMap, Located};
pub use calendar::{CalendarConfig, WorkingCalendar};
pub use case::{CaseState, NewCase, Queue, open_case};
pub use correlate::{Candidate, CorrelationConfig};
pub use deadline::{Alarm, Clock, DeadlineConfig};
pub use deferral::{AppealSubject, DeferralKind};
pub use routing::{OwnershipItem, OwnershipList, TimeLimit, TimeUnit};
