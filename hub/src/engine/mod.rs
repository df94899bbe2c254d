//! The case engine's pure core: routing by the ownership list, deadlines on the working
//! calendar, and the case a new event opens. No I/O; the ingest path drives it.

pub mod calendar;
pub mod case;
pub mod routing;

pub use calendar::{CalendarConfig, WorkingCalendar};
pub use case::{CaseState, NewCase, Queue, open_case};
pub use routing::{OwnershipItem, OwnershipList, TimeLimit, TimeUnit};
