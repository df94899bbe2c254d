//! Reading cases, their events and their timelines.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::deferrals::DeferralEnd;
use super::{EpisodeRow, Store, StoreError, from_ms, to_ms};
use crate::engine::workflow::Action;
use crate::engine::{CaseState, Queue};

/// Which cases a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseVisibility {
    All,
    /// A department handler sees only its department's cases.
    Department(String),
}

/// Filters for the case queue; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub state: Option<String>,
    pub queue: Option<String>,
    pub department: Option<String>,
    pub category: Option<String>,
    pub severity: Option<String>,
    /// Only cases under a deferral of this kind (`defer` 缓办, `ledger` 挂账).
    pub deferral: Option<String>,
    /// Only cases still open past their deadline at this time.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only cases in this division (a code prefix: county, township or village).
    pub area: Option<String>,
    pub sort: CaseSort,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Serialize)]
pub struct CaseRow {
    pub id: String,
    pub title: String,
    pub category: String,
    pub state: String,
    pub queue: String,
    pub severity: String,
    pub department: Option<String>,
    pub supervisor: Option<String>,
    pub time_limit: Option<String>,
    pub condition: Option<String>,
    pub closing_condition: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    /// When the deadline warning is (or was) due, and when the case was found overdue.
    pub warn_at: Option<DateTime<Utc>>,
    pub overdue_at: Option<DateTime<Utc>>,
    /// The department an overdue case was escalated to, and how many levels up (1: its
    /// supervising department).
    pub escalated_to: Option<String>,
    pub escalation_level: i64,
    /// Times verification sent the case back to the department.
    pub rework_count: i64,
    /// The deferral in effect (`defer` 缓办 or `ledger` 挂账), its end date for a `defer`,
    /// and the deadline it parked (the case's `due_at` is empty meanwhile).
    pub deferral_kind: Option<String>,
    pub deferred_until: Option<DateTime<Utc>>,
    pub paused_due_at: Option<DateTime<Utc>>,
    pub lat: f64,
    pub lon: f64,
    pub area_code: Option<String>,
    pub grid: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct CaseEventRow {
    pub id: String,
    pub received_at: DateTime<Utc>,
    /// The event as the gateway sent it.
    pub event: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct TimelineRow {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: String,
}

#[derive(Debug, Serialize)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub case: CaseRow,
    pub events: Vec<CaseEventRow>,
    /// The lasting conditions its camera events follow, and whether each goes on.
    pub episodes: Vec<EpisodeRow>,
    pub timeline: Vec<TimelineRow>,
}

/// The columns [`case_row`] reads, as a macro so queries stay `'static` strings.
macro_rules! case_columns {
    () => {
        "id, title, category, state, queue, severity, department, supervisor, time_limit, \
         condition_text, closing_condition, due_at, warn_at, overdue_at, escalated_to, escalation_level, rework_count, deferral_kind, \
         deferred_until, paused_due_at, lat, lon, \
         area_code, grid, opened_at, updated_at"
    };
}

/// A value for a placeholder of a query assembled from fixed fragments.
enum Value {
    Text(String),
    Int(i64),
}

/// The `WHERE` clause of the case queue for the filters given, from fixed fragments only
/// (a filter left out is left out of the SQL, so the planner can use the index that fits),
/// and the values for its placeholders `$1`…`$n`.
fn queue_filter(filter: &CaseFilter, department: Option<&str>) -> (String, Vec<Value>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut values = Vec::new();
    let mut equal = |column: &str, value: Option<&str>| {
        if let Some(v) = value {
            values.push(Value::Text(v.to_owned()));
            conditions.push(format!("{column} = ${}", values.len()));
        }
    };
    equal("state", filter.state.as_deref());
    equal("queue", filter.queue.as_deref());
    equal("department", department);
    equal("category", filter.category.as_deref());
    equal("severity", filter.severity.as_deref());
    equal("deferral_kind", filter.deferral.as_deref());
    if let Some(at) = filter.overdue_at {
        values.push(Value::Int(to_ms(at)));
        conditions.push(format!(
            "due_at < ${} AND state NOT IN ('closed', 'force_closed', 'void')",
            values.len()
        ));
    }
    if let Some(prefix) = &filter.area {
        // Codes are digits, and `:` sorts right after `9`: the codes under a prefix are
        // the range [prefix, prefix + ":"), which an ordinary index serves on both backends.
        values.push(Value::Text(prefix.clone()));
        values.push(Value::Text(format!("{prefix}:")));
        conditions.push(format!(
            "area_code >= ${} AND area_code < ${}",
            values.len() - 1,
            values.len()
        ));
    }
    let clause = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    (clause, values)
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    values: &[Value],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for v in values {
        q = match v {
            Value::Text(t) => q.bind(t.clone()),
            Value::Int(i) => q.bind(*i),
        };
    }
    q
}

/// The most cases the queue counts exactly; beyond it the count says "more than this".
pub const COUNT_CAP: i64 = 10_000;

/// How the case queue is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CaseSort {
    /// Newest first.
    #[default]
    Newest,
    /// The nearest deadline first; cases without one last.
    Due,
    /// High risk first, then newest.
    Risk,
}

impl std::str::FromStr for CaseSort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "newest" => Ok(Self::Newest),
            "due" => Ok(Self::Due),
            "risk" => Ok(Self::Risk),
            _ => Err("must be newest, due or risk".into()),
        }
    }
}

fn case_row(r: &AnyRow) -> Result<CaseRow, sqlx::Error> {
    Ok(CaseRow {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        category: r.try_get("category")?,
        state: r.try_get("state")?,
        queue: r.try_get("queue")?,
        severity: r.try_get("severity")?,
        department: r.try_get("department")?,
        supervisor: r.try_get("supervisor")?,
        time_limit: r.try_get("time_limit")?,
        condition: r.try_get("condition_text")?,
        closing_condition: r.try_get("closing_condition")?,
        due_at: r.try_get::<Option<i64>, _>("due_at")?.map(from_ms),
        warn_at: r.try_get::<Option<i64>, _>("warn_at")?.map(from_ms),
        overdue_at: r.try_get::<Option<i64>, _>("overdue_at")?.map(from_ms),
        escalated_to: r.try_get("escalated_to")?,
        escalation_level: r.try_get("escalation_level")?,
        rework_count: r.try_get("rework_count")?,
        deferral_kind: r.try_get("deferral_kind")?,
        deferred_until: r.try_get::<Option<i64>, _>("deferred_until")?.map(from_ms),
        paused_due_at: r.try_get::<Option<i64>, _>("paused_due_at")?.map(from_ms),
        lat: r.try_get("lat")?,
        lon: r.try_get("lon")?,
        area_code: r.try_get("area_code")?,
        grid: r.try_get("grid")?,
        opened_at: from_ms(r.try_get("opened_at")?),
        updated_at: from_ms(r.try_get("updated_at")?),
    })
}

impl Store {
    /// The case queue in `filter.sort` order, with the number of matching cases (at most
    /// [`COUNT_CAP`]) and whether more than that match.
    pub async fn list_cases(
        &self,
        visibility: &CaseVisibility,
        filter: &CaseFilter,
    ) -> Result<(i64, bool, Vec<CaseRow>), StoreError> {
        // A department handler's own department overrides any department filter it sent.
        let department = match visibility {
            CaseVisibility::All => filter.department.clone(),
            CaseVisibility::Department(d) => Some(d.clone()),
        };
        let (clause, values) = queue_filter(filter, department.as_deref());
        // Counting stops past the cap: an exact count of a million rows costs more than
        // the page itself, and no one pages that far.
        let count_sql = format!(
            "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM cases{clause} LIMIT {}) AS matched",
            COUNT_CAP + 1
        );
        // Assembled from the fixed fragments above; every value is a bound parameter.
        let counted: i64 = bind_all(sqlx::query(sqlx::AssertSqlSafe(count_sql)), &values)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        // Each order is exactly that of an index (migration `case_queue`).
        let order = match filter.sort {
            CaseSort::Newest => "opened_at DESC, id DESC",
            CaseSort::Due => "COALESCE(due_at, 9223372036854775807), id",
            CaseSort::Risk => {
                "CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, opened_at DESC, id DESC"
            }
        };
        let n = values.len();
        let list_sql = format!(
            "SELECT {} FROM cases{clause} ORDER BY {order} LIMIT ${} OFFSET ${}",
            case_columns!(),
            n + 1,
            n + 2
        );
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(list_sql)), &values)
            .bind(filter.limit)
            .bind(filter.offset)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(case_row).collect::<Result<_, _>>()?;
        Ok((counted.min(COUNT_CAP), counted > COUNT_CAP, items))
    }

    /// One case without its events and timeline, if it exists and the caller may see it.
    pub async fn get_case_row(
        &self,
        visibility: &CaseVisibility,
        id: &str,
    ) -> Result<Option<CaseRow>, StoreError> {
        let sql = concat!("SELECT ", case_columns!(), " FROM cases WHERE id = $1");
        let Some(row) = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let case = case_row(&row)?;
        if let CaseVisibility::Department(d) = visibility
            && case.department.as_deref() != Some(d.as_str())
        {
            return Ok(None);
        }
        Ok(Some(case))
    }

    /// One case with its events and timeline, if it exists and the caller may see it.
    pub async fn get_case(
        &self,
        visibility: &CaseVisibility,
        id: &str,
    ) -> Result<Option<CaseDetail>, StoreError> {
        let Some(case) = self.get_case_row(visibility, id).await? else {
            return Ok(None);
        };
        let events = sqlx::query(
            "SELECT id, received_at, body FROM events WHERE case_id = $1 ORDER BY occurred_at, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let body: String = r.try_get("body")?;
            Ok(CaseEventRow {
                id: r.try_get("id")?,
                received_at: from_ms(r.try_get("received_at")?),
                event: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
        let timeline = sqlx::query(
            "SELECT at, actor, action, from_state, to_state, note FROM case_timeline WHERE case_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(TimelineRow {
                at: from_ms(r.try_get("at")?),
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                from_state: r.try_get("from_state")?,
                to_state: r.try_get("to_state")?,
                note: r.try_get("note")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
        let episodes = self.case_episodes(id).await?;
        Ok(Some(CaseDetail {
            case,
            events,
            episodes,
            timeline,
        }))
    }
}

/// A change of state decided by the workflow, to be applied if the case is still in `from`.
#[derive(Debug)]
pub struct Transition<'a> {
    pub case_id: &'a str,
    pub from: CaseState,
    pub to: CaseState,
    pub action: Action,
    pub actor: String,
    pub reason: Option<&'a str>,
    /// A new assignment (dispatch) or its removal (refusal); `None` leaves it as it is.
    pub assignment: Option<Option<Assignment>>,
    pub rework: bool,
    pub at: DateTime<Utc>,
}

/// Who handles a case, and by when.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub department: String,
    pub supervisor: Option<String>,
    pub time_limit: String,
    pub condition: Option<String>,
    pub closing_condition: Option<String>,
    pub due_at: DateTime<Utc>,
    pub warn_at: DateTime<Utc>,
}

impl Store {
    /// Applies `t` in one transaction with its timeline entry. Returns false, changing
    /// nothing, when the case has left `t.from` meanwhile (someone else acted first).
    pub async fn transition(&self, t: &Transition<'_>) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let closes = matches!(t.to, CaseState::Closed | CaseState::ForceClosed);
        let dispatches = matches!(&t.assignment, Some(Some(_)));
        let changed = sqlx::query(
            "UPDATE cases SET state = $1, updated_at = $2, rework_count = rework_count + $3, \
             closed_at = CASE WHEN $6 = 1 THEN $2 ELSE closed_at END, \
             dispatched_at = CASE WHEN $7 = 1 THEN $2 ELSE dispatched_at END, \
             first_dispatched_at = CASE WHEN $7 = 1 AND first_dispatched_at IS NULL THEN $2 ELSE first_dispatched_at END, \
             handled_at = CASE WHEN $8 = 1 THEN $2 ELSE handled_at END \
             WHERE id = $4 AND state = $5",
        )
        .bind(t.to.as_str())
        .bind(to_ms(t.at))
        .bind(i64::from(t.rework))
        .bind(t.case_id)
        .bind(t.from.as_str())
        .bind(i64::from(closes))
        .bind(i64::from(dispatches))
        .bind(i64::from(t.to == CaseState::Handled))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        if let Some(assignment) = &t.assignment {
            let a = assignment.as_ref();
            sqlx::query(
                "UPDATE cases SET department = $1, supervisor = $2, time_limit = $3, condition_text = $4, \
                 closing_condition = $5, due_at = $6, queue = $7, warn_at = $8, \
                 warned_at = NULL, overdue_at = NULL, escalated_to = NULL, escalation_level = 0, \
                 next_escalation_at = NULL WHERE id = $9",
            )
            .bind(a.map(|a| a.department.clone()))
            .bind(a.and_then(|a| a.supervisor.clone()))
            .bind(a.map(|a| a.time_limit.clone()))
            .bind(a.and_then(|a| a.condition.clone()))
            .bind(a.and_then(|a| a.closing_condition.clone()))
            .bind(a.map(|a| to_ms(a.due_at)))
            .bind(if a.is_some() { Queue::Department.as_str() } else { Queue::JointReview.as_str() })
            .bind(a.map(|a| to_ms(a.warn_at)))
            .bind(t.case_id)
            .execute(&mut *tx)
            .await?;
        }
        // A deferral ends when the case gets a new clock (dispatched anew, refused) or
        // closes; a closing case is measured against the deadline the deferral parked.
        if t.assignment.is_some() || closes {
            let end = DeferralEnd {
                restore_parked: t.assignment.is_none(),
                note: if closes {
                    "结案 closed"
                } else {
                    "重新派遣 reassigned"
                },
                by: &t.actor,
                at: t.at,
            };
            super::deferrals::drop_deferral(&mut tx, t.case_id, &end).await?;
        }
        let note = match (&t.assignment, t.reason) {
            (Some(Some(a)), _) => format!(
                "to {} ({}), due {}",
                a.department,
                a.time_limit,
                a.due_at.to_rfc3339()
            ),
            (_, Some(reason)) => reason.to_owned(),
            _ => String::new(),
        };
        sqlx::query(
            "INSERT INTO case_timeline (id, case_id, at, actor, action, from_state, to_state, note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(t.case_id)
        .bind(to_ms(t.at))
        .bind(&t.actor)
        .bind(t.action.as_str())
        .bind(t.from.as_str())
        .bind(t.to.as_str())
        .bind(note)
        .execute(&mut *tx)
        .await?;
        if t.to == CaseState::Handled {
            super::reinspections::request(&mut tx, t.case_id, "hub", to_ms(t.at)).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(values: &[Value]) -> Vec<String> {
        values
            .iter()
            .map(|v| match v {
                Value::Text(t) => t.clone(),
                Value::Int(i) => i.to_string(),
            })
            .collect()
    }

    #[test]
    fn the_queue_filter_names_only_the_filters_given() {
        let mut filter = CaseFilter {
            state: None,
            queue: None,
            department: None,
            category: None,
            severity: None,
            deferral: None,
            overdue_at: None,
            area: None,
            sort: CaseSort::Newest,
            limit: 20,
            offset: 0,
        };
        let (clause, values) = queue_filter(&filter, None);
        assert_eq!(clause, "");
        assert!(values.is_empty());

        filter.state = Some("dispatched".into());
        filter.area = Some("330106001".into());
        filter.overdue_at = DateTime::from_timestamp(1_800_000_000, 0);
        let (clause, values) = queue_filter(&filter, Some("police"));
        assert_eq!(
            clause,
            " WHERE state = $1 AND department = $2 \
             AND due_at < $3 AND state NOT IN ('closed', 'force_closed', 'void') \
             AND area_code >= $4 AND area_code < $5"
        );
        assert_eq!(
            texts(&values),
            [
                "dispatched",
                "police",
                "1800000000000",
                "330106001",
                "330106001:"
            ]
        );
        // Every code under the prefix falls in the range, and no other.
        for (code, inside) in [
            ("330106001", true),
            ("330106001999", true),
            ("330106002000", false),
            ("330106000999", false),
        ] {
            assert_eq!(
                ("330106001".."330106001:").contains(&code),
                inside,
                "{code}"
            );
        }
    }
}
