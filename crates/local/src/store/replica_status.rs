//! A replica's recorded state, one word in the database and in `-o json`.

use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::Serialize;
use trainctl_core::state_machine::ReplicaState;

/// The state of a replica's latest attempt as stored: core's [`ReplicaState`] without the
/// exit code, which is stored beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReplicaStatus {
    /// No attempt yet.
    NotStarted,
    /// The latest attempt runs.
    Running,
    /// It exited 0.
    Succeeded,
    /// It exited non-zero.
    Failed,
    /// The engine stopped it.
    Stopped,
}

impl ReplicaStatus {
    /// Every state.
    pub const ALL: [ReplicaStatus; 5] = [
        ReplicaStatus::NotStarted,
        ReplicaStatus::Running,
        ReplicaStatus::Succeeded,
        ReplicaStatus::Failed,
        ReplicaStatus::Stopped,
    ];

    /// The stored word (the variant's name).
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaStatus::NotStarted => "NotStarted",
            ReplicaStatus::Running => "Running",
            ReplicaStatus::Succeeded => "Succeeded",
            ReplicaStatus::Failed => "Failed",
            ReplicaStatus::Stopped => "Stopped",
        }
    }
}

impl FromStr for ReplicaStatus {
    type Err = String;

    fn from_str(word: &str) -> Result<Self, String> {
        ReplicaStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == word)
            .ok_or_else(|| format!("unknown replica state {word:?}"))
    }
}

impl From<ReplicaState> for ReplicaStatus {
    fn from(state: ReplicaState) -> Self {
        match state {
            ReplicaState::NotStarted => ReplicaStatus::NotStarted,
            ReplicaState::Running => ReplicaStatus::Running,
            ReplicaState::Succeeded => ReplicaStatus::Succeeded,
            ReplicaState::Failed { .. } => ReplicaStatus::Failed,
            ReplicaState::Stopped => ReplicaStatus::Stopped,
        }
    }
}

impl ToSql for ReplicaStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for ReplicaStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e: String| FromSqlError::Other(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::ReplicaStatus;

    #[test]
    fn json_and_database_spell_every_state_the_same() {
        for s in ReplicaStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(s.as_str().parse::<ReplicaStatus>(), Ok(s));
        }
    }

    #[test]
    fn an_unknown_word_is_an_error() {
        assert_eq!(
            "Sleeping".parse::<ReplicaStatus>(),
            Err("unknown replica state \"Sleeping\"".to_string())
        );
    }
}
