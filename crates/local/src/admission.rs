//! Who gets this machine's resources: the gang queue decides which jobs get their GPUs, and
//! every admitted replica gets a free local port. The decision and the grant happen in one
//! store transaction ([`Store::allocation`]), so no two jobs share a GPU or a port.

use std::net::TcpListener;

use trainctl_core::queue::admit;
use trainctl_core::ReplicaId;
use trainctl_spec::TrainingJob;

use crate::store::{Allocation, ReplicaGrant, Store, StoreError};

/// What the queue said.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Resources granted: GPUs per replica and ports.
    Granted,
    /// Not yet.
    Wait,
}

/// Asks the gang queue for the job's GPUs (from `inventory`, this machine's devices) and
/// picks a free port per replica, atomically with every other job's request.
pub fn try_admit(
    store: &mut Store,
    job: &TrainingJob,
    inventory: &[u32],
) -> Result<Admission, StoreError> {
    let name = job.name();
    let allocation = store.allocation()?;
    let claims = allocation.claims()?;
    let need = job.total_gpus();
    let free: Vec<u32> = inventory
        .iter()
        .copied()
        .filter(|g| !claims.held_gpus.contains(g))
        .collect();
    if need > 0
        && !admit(&claims.gpu_queue, free.len() as u32)
            .iter()
            .any(|k| k == name)
    {
        return Ok(Admission::Wait);
    }
    let mut taken = free.into_iter().take(need as usize);
    let ids = ReplicaId::all_of(job);
    let ports = pick_ports(&allocation, ids.len())?;
    let grants: Vec<ReplicaGrant> = ids
        .into_iter()
        .zip(ports)
        .map(|(replica, port)| {
            let n = job
                .spec
                .replicas
                .get(replica.role)
                .map_or(0, |r| r.resources.gpus());
            ReplicaGrant {
                replica,
                port,
                gpus: taken.by_ref().take(n as usize).collect(),
            }
        })
        .collect();
    allocation.grant(name, &grants)?;
    Ok(Admission::Granted)
}

/// Free ports from the kernel that no other job holds. The listeners stay open until all
/// are picked, so the kernel does not hand out the same one twice.
fn pick_ports(allocation: &Allocation, n: usize) -> Result<Vec<u16>, StoreError> {
    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        if tries > n * 20 + 100 {
            return Err(StoreError::Io(std::io::Error::other(
                "could not find free local ports",
            )));
        }
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        let taken = allocation.port_in_use(port)?;
        listeners.push(l);
        if !taken {
            ports.push(port);
        }
    }
    Ok(ports)
}
