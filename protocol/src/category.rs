//! Category codes in the GB/T 30428.2 style: a namespace and a 4-digit major+minor code.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A category code such as `event:0407` (mass gathering) or `component:0114` (unknown-owner
/// manhole cover).
///
/// Two namespaces exist, `component` (部件, physical assets) and `event` (事件); the code is
/// 2 digits of major class and 2 of minor class. Cities extend the catalogue, so the code is
/// data checked only for its shape, never an enum of known categories.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CategoryCode(String);

impl JsonSchema for CategoryCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CategoryCode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "Category code: namespace `component` or `event`, then 2 digits major and 2 digits minor class (GB/T 30428.2).",
            "pattern": "^(component|event):[0-9]{4}$",
            "examples": ["event:0407", "component:0114"]
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("category code {0:?} is not of the form `component:NNNN` or `event:NNNN`")]
pub struct CategoryError(String);

impl CategoryCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `component` or `event`.
    pub fn namespace(&self) -> &str {
        self.0.split_once(':').map(|(ns, _)| ns).unwrap_or_default()
    }

    /// The 2-digit major class, e.g. `04`.
    pub fn major(&self) -> &str {
        &self.code()[..2]
    }

    /// The 4-digit major+minor code, e.g. `0407`.
    pub fn code(&self) -> &str {
        self.0.split_once(':').map(|(_, c)| c).unwrap_or_default()
    }
}

impl FromStr for CategoryCode {
    type Err = CategoryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = match s.split_once(':') {
            Some((ns, code)) => {
                matches!(ns, "component" | "event")
                    && code.len() == 4
                    && code.bytes().all(|b| b.is_ascii_digit())
            }
            None => false,
        };
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(CategoryError(s.to_owned()))
        }
    }
}

impl TryFrom<String> for CategoryCode {
    type Error = CategoryError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<CategoryCode> for String {
    fn from(c: CategoryCode) -> Self {
        c.0
    }
}

impl fmt::Display for CategoryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_namespaces() {
        let c: CategoryCode = "event:0407".parse().unwrap();
        assert_eq!(
            (c.namespace(), c.major(), c.code()),
            ("event", "04", "0407")
        );
        let c: CategoryCode = "component:0114".parse().unwrap();
        assert_eq!(c.namespace(), "component");
    }

    #[test]
    fn rejects_bad_shapes() {
        for bad in [
            "",
            "event",
            "event:407",
            "event:04071",
            "evnt:0407",
            "event:04a7",
            "0407",
        ] {
            assert!(bad.parse::<CategoryCode>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn serde_round_trip_and_rejection() {
        let c: CategoryCode = serde_json::from_str("\"event:0407\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"event:0407\"");
        let err = serde_json::from_str::<CategoryCode>("\"fire\"").unwrap_err();
        assert!(err.to_string().contains("not of the form"), "{err}");
    }
}
