//! Replica identities such as `worker-1`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use trainctl_spec::{ReplicaType, TrainingJob};

/// One replica of a job: its role and index within the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaId {
    /// The role.
    pub role: ReplicaType,
    /// 0-based index within the role.
    pub index: u32,
}

impl ReplicaId {
    /// `role`-`index`.
    pub fn new(role: ReplicaType, index: u32) -> Self {
        ReplicaId { role, index }
    }

    /// Every replica of a job, in TF_CONFIG order (role, then index).
    pub fn all_of(job: &TrainingJob) -> Vec<ReplicaId> {
        job.spec
            .replicas
            .roles()
            .flat_map(|(role, r)| (0..r.count).map(move |i| ReplicaId::new(role, i)))
            .collect()
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.role, self.index)
    }
}

impl FromStr for ReplicaId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a replica name; use ROLE-INDEX such as worker-1");
        let (role, index) = s.rsplit_once('-').ok_or_else(bad)?;
        let role = ReplicaType::parse(role).ok_or_else(bad)?;
        let index = index.parse().map_err(|_| bad())?;
        Ok(ReplicaId { role, index })
    }
}
