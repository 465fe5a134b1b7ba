//! Following a container's log as a stream, the way `kubectl logs -f` does, but surviving
//! dropped connections: the log is followed with timestamps, and after the connection
//! drops it is asked again from the last delivered line's second (`sinceTime`), skipping
//! what was delivered already: lines of earlier timestamps, and as many lines of the last
//! timestamp as were delivered with it (several lines can share one timestamp). A line cut
//! by the drop is not delivered; it comes whole with the next connection. The follower
//! ends when the container has ended and every line it printed is delivered.
//!
//! It relies on what kubelets guarantee: timestamps never decrease along a container's log.
//! It follows one pod: the uid it sees first. A pod of the same name created later (the
//! operator's next attempt of a replica) ends the follow instead of joining it, though a
//! replacement made in the instant between a dropped connection and the next one can
//! still be read from.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> anyhow::Result<()> {
//! use trainctl_kube_client::log_follow::LogFollower;
//! let pods = kube::Api::namespaced(client, "default");
//! let mut follower = LogFollower::new(pods, "job-worker-0", None);
//! while let Some(line) = follower.next_line().await? {
//!     println!("{line}");
//! }
//! # Ok(()) }
//! ```

use std::pin::Pin;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use futures::{AsyncBufRead, AsyncBufReadExt};
use jiff::{RoundMode, Timestamp, TimestampRound, Unit};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::Api;

/// How long to wait before asking again for the log of a container still starting.
const STARTING_WAIT: Duration = Duration::from_millis(200);
/// The first wait after a failed request; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between failed requests.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Failed requests in a row after which the follower gives up.
const MAX_FAILURES: u32 = 20;

type Reader = Pin<Box<dyn AsyncBufRead + Send>>;

/// Where the delivered lines end: the last one's timestamp and how many delivered lines
/// carry exactly that timestamp.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Mark {
    at: Timestamp,
    count: usize,
}

/// What the follower is doing.
enum State {
    /// No connection: open one (following, or a last plain read once the container ended).
    Closed { last_read: bool },
    /// Reading a connection.
    Open {
        reader: Reader,
        last_read: bool,
        /// Lines with the mark's timestamp seen on this connection.
        seen_at_mark: usize,
    },
    /// Every line is delivered.
    Done,
}

/// Follows one container's log; see the module documentation.
pub struct LogFollower {
    pods: Api<Pod>,
    pod: String,
    container: Option<String>,
    mark: Option<Mark>,
    /// The uid of the pod being followed, once seen.
    uid: Option<String>,
    /// The most lines the first connection asks for (`tailLines`).
    tail: Option<i64>,
    state: State,
    reconnects: u32,
    failures: u32,
    /// False once the follow ended because the pod went (deleted or replaced).
    whole: bool,
}

/// What became of the followed container.
#[derive(Debug, PartialEq)]
enum Fate {
    /// Running, or not known (the pod could not be read).
    Running,
    /// Ended: what its log holds is all.
    Ended,
    /// Deleted, or replaced by another pod of the same name.
    Gone,
}

impl LogFollower {
    /// A follower of `pod`'s log (its only container, or `container`), from the first line.
    pub fn new(pods: Api<Pod>, pod: &str, container: Option<&str>) -> Self {
        LogFollower {
            pods,
            pod: pod.to_string(),
            container: container.map(str::to_string),
            mark: None,
            uid: None,
            tail: None,
            state: State::Closed { last_read: false },
            reconnects: 0,
            failures: 0,
            whole: true,
        }
    }

    /// Starts with the last `lines` lines printed so far instead of the first line.
    pub fn tail(mut self, lines: usize) -> Self {
        self.tail = Some(lines as i64);
        self
    }

    /// The lines printed so far from where the follower is, read with one plain request (so
    /// a caller has them at once rather than when a stream brings them); following goes on
    /// after them. A container still starting, or a pod gone, has none.
    pub async fn so_far(&mut self) -> Result<Vec<String>> {
        let params = LogParams {
            container: self.container.clone(),
            timestamps: true,
            since_time: self.mark.map(|m| whole_second(m.at)),
            tail_lines: self
                .tail
                .filter(|_| self.mark.is_none() && self.reconnects == 0),
            ..LogParams::default()
        };
        let text = match self.pods.logs(&self.pod, &params).await {
            Ok(text) => text,
            Err(kube::Error::Api(e)) if e.code == 400 || e.code == 404 => return Ok(Vec::new()),
            Err(e) => bail!("pod {}: cannot read its log: {e}", self.pod),
        };
        if matches!(self.state, State::Open { .. }) {
            self.state = State::Closed { last_read: false };
        }
        let mut seen_at_mark = 0;
        let mut lines = Vec::new();
        for text in text.lines() {
            let (at, line) = split_timestamp(text).ok_or_else(|| {
                anyhow!("pod {}: a log line without a timestamp: {text:?}", self.pod)
            })?;
            lines.extend(deliver(&mut self.mark, &mut seen_at_mark, at, line));
        }
        Ok(lines)
    }

    /// Whether every line the container printed was delivered: false when the follow ended
    /// because its pod was deleted or replaced first (its end may be in the operator's
    /// archive).
    pub fn whole(&self) -> bool {
        self.whole
    }

    /// How many times the log was asked for again after a connection ended early.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// The next line (without its newline and timestamp); None once the container has
    /// ended (or its pod is gone) and every line is delivered. Errors only when the API
    /// server keeps failing or answers with something that is not a timestamped log.
    pub async fn next_line(&mut self) -> Result<Option<String>> {
        loop {
            match &mut self.state {
                State::Done => return Ok(None),
                State::Closed { last_read } => {
                    let last_read = *last_read;
                    self.open(last_read).await?;
                }
                State::Open {
                    reader,
                    last_read,
                    seen_at_mark,
                } => {
                    let mut raw = Vec::new();
                    let read = reader.read_until(b'\n', &mut raw).await;
                    let whole = raw.last() == Some(&b'\n');
                    let last_read = *last_read;
                    match read {
                        Ok(n) if n > 0 && (whole || last_read) => {
                            let text = String::from_utf8_lossy(&raw);
                            let text = text.strip_suffix('\n').unwrap_or(&text);
                            let (at, line) = split_timestamp(text).ok_or_else(|| {
                                anyhow!(
                                    "pod {}: a log line without a timestamp: {text:?}",
                                    self.pod
                                )
                            })?;
                            if let Some(line) = deliver(&mut self.mark, seen_at_mark, at, line) {
                                return Ok(Some(line));
                            }
                        }
                        // The end of the connection (or a line it cut off).
                        _ if last_read => self.state = State::Done,
                        _ => {
                            self.state = match self.fate().await {
                                Fate::Running => State::Closed { last_read: false },
                                Fate::Ended => State::Closed { last_read: true },
                                Fate::Gone => self.gone(),
                            };
                            self.reconnects += 1;
                        }
                    }
                }
            }
        }
    }

    /// Opens a connection from the mark: following, or (`last_read`) a plain read of what
    /// is left. Waits while the container starts; gives up on a pod that is gone.
    async fn open(&mut self, last_read: bool) -> Result<()> {
        if self.uid.is_none() && self.fate().await == Fate::Gone {
            self.state = self.gone();
            return Ok(());
        }
        let params = LogParams {
            container: self.container.clone(),
            follow: !last_read,
            timestamps: true,
            since_time: self.mark.map(|m| whole_second(m.at)),
            tail_lines: self
                .tail
                .filter(|_| self.mark.is_none() && self.reconnects == 0),
            ..LogParams::default()
        };
        let result = self.pods.log_stream(&self.pod, &params).await;
        match result {
            Ok(reader) => {
                self.failures = 0;
                self.state = State::Open {
                    reader: Box::pin(reader),
                    last_read,
                    seen_at_mark: 0,
                };
            }
            Err(kube::Error::Api(e)) if e.code == 404 => self.state = self.gone(),
            // Still starting (ContainerCreating): ask again soon, unless it never will.
            Err(kube::Error::Api(e)) if e.code == 400 => match self.fate().await {
                Fate::Running => tokio::time::sleep(STARTING_WAIT).await,
                Fate::Gone => self.state = self.gone(),
                Fate::Ended => bail!("pod {}: cannot read its log: {}", self.pod, e.message),
            },
            Err(e) => {
                self.failures += 1;
                if self.failures >= MAX_FAILURES {
                    bail!(
                        "pod {}: reading its log failed {} times in a row, the last: {e}",
                        self.pod,
                        self.failures
                    );
                }
                tokio::time::sleep(backoff(self.failures)).await;
            }
        }
        Ok(())
    }
    /// The end of a follow whose pod went away.
    fn gone(&mut self) -> State {
        self.whole = false;
        State::Done
    }

    /// What became of the container; the first look pins the pod's uid.
    async fn fate(&mut self) -> Fate {
        let pod = match self.pods.get_opt(&self.pod).await {
            Ok(Some(pod)) => pod,
            Ok(None) => return Fate::Gone,
            // Not known: assume it runs; the next connection tells more.
            Err(_) => return Fate::Running,
        };
        let uid = pod.metadata.uid.clone();
        if self.uid.is_none() {
            self.uid = uid;
        } else if self.uid != uid {
            return Fate::Gone;
        }
        let status = pod.status.unwrap_or_default();
        if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            return Fate::Ended;
        }
        let statuses = status.container_statuses.unwrap_or_default();
        let ours = statuses.iter().find(|c| {
            self.container
                .as_deref()
                .is_none_or(|name| name == c.name.as_str())
        });
        match ours.is_some_and(|c| c.state.as_ref().is_some_and(|s| s.terminated.is_some())) {
            true => Fate::Ended,
            false => Fate::Running,
        }
    }
}

/// The wait after the `failures`-th failed request in a row.
fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << failures.min(10))
        .min(MAX_BACKOFF)
}

/// The timestamp rounded down to its second: `sinceTime` travels in whole seconds (and
/// kube-rs would round it to the nearest one, which could skip lines).
fn whole_second(at: Timestamp) -> Timestamp {
    let round = TimestampRound::new()
        .smallest(Unit::Second)
        .mode(RoundMode::Trunc);
    at.round(round).unwrap_or(at)
}

/// Splits `2026-01-01T00:00:00.5Z text` into the timestamp and the text.
fn split_timestamp(line: &str) -> Option<(Timestamp, String)> {
    let (at, text) = line.split_once(' ').unwrap_or((line, ""));
    Some((at.parse().ok()?, text.to_string()))
}

/// Decides whether a line read at `at` is new, given the mark of what was delivered and how
/// many lines with the mark's timestamp this connection has shown; moves the mark when so.
fn deliver(
    mark: &mut Option<Mark>,
    seen_at_mark: &mut usize,
    at: Timestamp,
    line: String,
) -> Option<String> {
    match mark {
        Some(m) if at < m.at => None,
        Some(m) if at == m.at => {
            *seen_at_mark += 1;
            (*seen_at_mark > m.count).then(|| {
                m.count = *seen_at_mark;
                line
            })
        }
        _ => {
            *mark = Some(Mark { at, count: 1 });
            *seen_at_mark = 1;
            Some(line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_resumed_connection_skips_exactly_the_lines_delivered_before() {
        // Delivered before the drop: a@1s, b@2s, c@2s (two lines share 2s).
        let mut mark = Some(Mark {
            at: at("2026-01-01T00:00:02Z"),
            count: 2,
        });
        let mut seen = 0;
        let replay = [
            ("2026-01-01T00:00:01Z", "a"),
            ("2026-01-01T00:00:02Z", "b"),
            ("2026-01-01T00:00:02Z", "c"),
            ("2026-01-01T00:00:02Z", "d"),
            ("2026-01-01T00:00:03Z", "e"),
        ];
        let delivered: Vec<String> = replay
            .iter()
            .filter_map(|(t, l)| deliver(&mut mark, &mut seen, at(t), l.to_string()))
            .collect();
        assert_eq!(delivered, ["d", "e"]);
        assert_eq!(
            mark,
            Some(Mark {
                at: at("2026-01-01T00:00:03Z"),
                count: 1
            })
        );
    }

    #[test]
    fn since_time_is_rounded_down_to_the_second() {
        assert_eq!(
            whole_second(at("2026-01-01T00:00:02.9Z")),
            at("2026-01-01T00:00:02Z")
        );
    }

    #[test]
    fn a_timestamped_line_splits_and_an_untimestamped_one_does_not() {
        let (t, text) = split_timestamp("2026-01-01T00:00:02.123456789Z step 1 loss 2").unwrap();
        assert_eq!(
            (t, text.as_str()),
            (at("2026-01-01T00:00:02.123456789Z"), "step 1 loss 2")
        );
        assert!(split_timestamp("step 1 loss 2").is_none());
    }
}
