//! Routing by the ownership list (确权清单): category + place → responsible department,
//! time limit and closing condition. Pure: the list is data loaded by the caller.

use std::fmt;
use std::str::FromStr;

use protocol::CategoryCode;
use serde::{Deserialize, Serialize};

/// The ownership list: which department answers for which category in which area.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipList {
    #[serde(default, rename = "item")]
    pub items: Vec<OwnershipItem>,
}

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipItem {
    /// A category code or a prefix of one: `event:0407` (one minor class), `event:04` (a major
    /// class) or `event:` (a whole namespace).
    pub category: String,
    /// A division-code prefix (6 digits county, 9 township, 12 village); absent = everywhere.
    #[serde(default)]
    pub area: Option<String>,
    /// Filing condition (立案条件), shown to the dispatcher.
    #[serde(default)]
    pub condition: Option<String>,
    /// Responsible department (责任主体).
    pub department: String,
    /// Supervising department (监管主体).
    #[serde(default)]
    pub supervisor: Option<String>,
    pub time_limit: TimeLimit,
    /// Closing condition (结案条件).
    #[serde(default)]
    pub closing: Option<String>,
    /// Higher wins when several items match; then the most specific area, then category.
    #[serde(default)]
    pub priority: Option<i32>,
}

impl OwnershipList {
    /// Parses and checks the TOML text of a list (`[[item]]` tables); every item must be
    /// usable. Imports go through [`crate::reference`], which also checks the names.
    pub fn parse(text: &str) -> Result<Self, String> {
        use crate::reference::{Format, Kind, Set};
        match Set::parse(Kind::Ownership, Format::Toml, text) {
            Ok(Set::Ownership(rows)) => Ok(Self {
                items: rows.into_iter().map(|(_, item)| item).collect(),
            }),
            Ok(_) => unreachable!("an ownership document parses to an ownership set"),
            Err(errors) => Err(errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")),
        }
    }

    /// The item that answers for `category` at `area`, or `None`: the case then goes to the
    /// centre's joint review queue (联合研判).
    pub fn route(&self, category: &CategoryCode, area: Option<&str>) -> Option<&OwnershipItem> {
        self.items
            .iter()
            .filter(|item| category.as_str().starts_with(&item.category))
            .filter(|item| match (&item.area, area) {
                (None, _) => true,
                (Some(prefix), Some(area)) => area.starts_with(prefix.as_str()),
                (Some(_), None) => false,
            })
            .max_by_key(|item| {
                (
                    item.priority.unwrap_or(0),
                    item.area.as_ref().map_or(0, String::len),
                    item.category.len(),
                )
            })
    }
}

/// A time limit (处置时限) in one of the four units the centres use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeLimit {
    pub amount: u32,
    pub unit: TimeUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// 紧急工作时: continuous clock hours, nights and holidays included.
    UrgentHours,
    /// 工作时: hours inside the working periods of working days.
    WorkingHours,
    /// 工作日: whole working days' worth of working time.
    WorkingDays,
    /// 自然日: calendar days.
    CalendarDays,
}

impl TimeUnit {
    fn as_str(self) -> &'static str {
        match self {
            TimeUnit::UrgentHours => "urgent_hours",
            TimeUnit::WorkingHours => "working_hours",
            TimeUnit::WorkingDays => "working_days",
            TimeUnit::CalendarDays => "calendar_days",
        }
    }
}

impl FromStr for TimeLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "time limit {s:?} must be `N urgent_hours`, `N working_hours`, `N working_days` or `N calendar_days`"
            )
        };
        let (amount, unit) = s.trim().split_once(char::is_whitespace).ok_or_else(bad)?;
        let amount: u32 = amount.parse().map_err(|_| bad())?;
        let unit = match unit.trim() {
            "urgent_hours" => TimeUnit::UrgentHours,
            "working_hours" => TimeUnit::WorkingHours,
            "working_days" => TimeUnit::WorkingDays,
            "calendar_days" => TimeUnit::CalendarDays,
            _ => return Err(bad()),
        };
        if amount == 0 {
            return Err(format!("time limit {s:?} must be at least 1"));
        }
        Ok(TimeLimit { amount, unit })
    }
}

impl TryFrom<String> for TimeLimit {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TimeLimit> for String {
    fn from(t: TimeLimit) -> Self {
        t.to_string()
    }
}

impl fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.unit.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"
        [[item]]
        category = "event:04"
        department = "emergency"
        time_limit = "2 urgent_hours"

        [[item]]
        category = "event:0407"
        department = "police"
        time_limit = "2 urgent_hours"

        [[item]]
        category = "event:0407"
        area = "330106001"
        department = "township-01-police"
        time_limit = "4 working_hours"

        [[item]]
        category = "component:01"
        department = "housing"
        time_limit = "2 working_days"

        [[item]]
        category = "component:0114"
        department = "urban-management"
        time_limit = "1 calendar_days"
        priority = -1
    "#;

    fn route<'a>(list: &'a OwnershipList, category: &str, area: Option<&str>) -> Option<&'a str> {
        list.route(&category.parse().unwrap(), area)
            .map(|i| i.department.as_str())
    }

    #[test]
    fn most_specific_match_wins_at_equal_priority() {
        let list = OwnershipList::parse(LIST).unwrap();
        assert_eq!(
            route(&list, "event:0407", Some("330106001002")),
            Some("township-01-police")
        );
        assert_eq!(
            route(&list, "event:0407", Some("330107000000")),
            Some("police")
        );
        assert_eq!(route(&list, "event:0407", None), Some("police"));
        assert_eq!(
            route(&list, "event:0411", Some("330106001002")),
            Some("emergency")
        );
    }

    #[test]
    fn priority_beats_specificity() {
        let list = OwnershipList::parse(LIST).unwrap();
        // component:0114 is more specific but has the lower priority.
        assert_eq!(route(&list, "component:0114", None), Some("housing"));
    }

    #[test]
    fn no_match_is_none() {
        let list = OwnershipList::parse(LIST).unwrap();
        assert_eq!(route(&list, "event:0501", Some("330106001002")), None);
        assert_eq!(route(&OwnershipList::default(), "event:0407", None), None);
    }

    #[test]
    fn bad_items_are_named() {
        let cases = [
            (
                r#"[[item]]
category = "fire"
department = "x"
time_limit = "1 urgent_hours""#,
                "line 1: category \"fire\"",
            ),
            (
                r#"[[item]]
category = "event:04"
department = "x"
time_limit = "2 hours""#,
                "time limit \"2 hours\"",
            ),
            (
                r#"[[item]]
category = "event:04"
department = "x"
time_limit = "1 urgent_hours"
[[item]]
category = "event:04"
area = "33a"
department = "x"
time_limit = "1 urgent_hours""#,
                "line 5: area",
            ),
            (
                r#"[[item]]
category = "event:04"
departmnt = "x"
time_limit = "1 urgent_hours""#,
                "departmnt",
            ),
        ];
        for (text, want) in cases {
            let err = OwnershipList::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
    }

    #[test]
    fn time_limit_round_trips() {
        for s in [
            "2 urgent_hours",
            "4 working_hours",
            "2 working_days",
            "7 calendar_days",
        ] {
            assert_eq!(s.parse::<TimeLimit>().unwrap().to_string(), s);
        }
        assert!("0 working_days".parse::<TimeLimit>().is_err());
        assert!("two working_days".parse::<TimeLimit>().is_err());
    }
}
