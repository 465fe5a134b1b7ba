//! Following a container's log as a stream, the way `kubectl logs -f` does, but surviving
//! dropped connections, exactly, for about one byte fetched per byte printed: the log is
//! followed without timestamps, counting the lines delivered. What ties that count to the
//! log is an anchor: a whole second `S` and the number of the first line stamped at or
//! after it, so a request with `sinceTime=S` starts at a known line. Without one the log's
//! first line is line 0. After a dropped connection the log is read once with timestamps
//! from the anchor, which delivers the lines missed and sets the anchor to the last line's
//! second; following goes on from there, skipping the lines of that second already
//! delivered. A line cut by the drop is not delivered; it comes whole with the next
//! read. A stream that ends cleanly (rather than breaking off) with the container ended
//! is its whole log; one that ends while the container runs is resumed the same way. The
//! follower ends when the container has ended and every line it printed is delivered.
//!
//! It relies on what kubelets guarantee: timestamps never decrease along a container's log,
//! and `sinceTime` selects the lines stamped at or after its second. It follows one pod:
//! the uid it sees first. A pod of the same name created later (the operator's next
//! attempt of a replica) ends the follow instead of joining it, though a replacement made
//! in the instant between a dropped connection and the next one can still be read from.
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

use std::collections::VecDeque;
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

/// A place in the log: a request with `sinceTime = since` starts at line `line`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Anchor {
    since: Timestamp,
    line: usize,
}

/// What the follower is doing.
enum State {
    /// No connection: open one from the anchor.
    Closed,
    /// Reading a connection whose next line is line `next`.
    Open { reader: Reader, next: usize },
    /// Every line is read (some may still wait in `pending`).
    Done,
}

/// Follows one container's log; see the module documentation.
pub struct LogFollower {
    pods: Api<Pod>,
    pod: String,
    container: Option<String>,
    /// Where a request starts; None: at line 0, the log's first.
    anchor: Option<Anchor>,
    /// Lines delivered or waiting in `pending`.
    read: usize,
    /// Lines read by a catch-up read, still to be delivered.
    pending: VecDeque<String>,
    /// The uid of the pod being followed, once seen.
    uid: Option<String>,
    /// The most lines the first read asks for (`tailLines`).
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
            anchor: None,
            read: 0,
            pending: VecDeque::new(),
            uid: None,
            tail: None,
            state: State::Closed,
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
        if matches!(self.state, State::Open { .. }) {
            self.state = State::Closed;
        }
        self.catch_up().await?;
        Ok(self.pending.drain(..).collect())
    }

    /// Whether every line the container printed was delivered: false when the follow ended
    /// because its pod was deleted or replaced first (its end may be in the operator's
    /// archive).
    pub fn whole(&self) -> bool {
        self.whole
    }

    /// How many times the log was asked for again after a connection broke off.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// The next line (without its newline); None once the container has ended (or its pod
    /// is gone) and every line is delivered. Errors only when the API server keeps failing
    /// or answers a timestamped read with lines that have no timestamp.
    pub async fn next_line(&mut self) -> Result<Option<String>> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Ok(Some(line));
            }
            match &mut self.state {
                State::Done => return Ok(None),
                State::Closed => self.open().await?,
                State::Open { reader, next } => {
                    let mut raw = Vec::new();
                    let read = reader.read_until(b'\n', &mut raw).await;
                    match read {
                        Ok(n) if n > 0 && raw.last() == Some(&b'\n') => {
                            let line = *next;
                            *next += 1;
                            if line >= self.read {
                                self.read += 1;
                                raw.pop();
                                return Ok(Some(String::from_utf8_lossy(&raw).into_owned()));
                            }
                        }
                        // The stream ended: the kubelet ends it once the container has
                        // ended and its last line is sent (a last line without a newline
                        // counts then); while it runs, something else ended it.
                        Ok(_) => {
                            let unread = !raw.is_empty() && *next >= self.read;
                            match self.fate().await {
                                Fate::Ended => {
                                    if unread {
                                        self.read += 1;
                                        self.pending
                                            .push_back(String::from_utf8_lossy(&raw).into_owned());
                                    }
                                    self.state = State::Done;
                                }
                                Fate::Running => self.resume(false).await?,
                                Fate::Gone => self.state = self.gone(),
                            }
                        }
                        // It broke off (a line it cut is read again whole).
                        Err(_) => {
                            self.reconnects += 1;
                            match self.fate().await {
                                Fate::Running => self.resume(false).await?,
                                Fate::Ended => self.resume(true).await?,
                                Fate::Gone => self.state = self.gone(),
                            }
                        }
                    }
                }
            }
        }
    }

    /// Reads what was missed with timestamps (setting a new anchor); then follows on, or
    /// (`ended`: the container has ended, so that read had every line) is done.
    async fn resume(&mut self, ended: bool) -> Result<()> {
        self.catch_up().await?;
        self.state = if ended { State::Done } else { State::Closed };
        Ok(())
    }

    /// A plain read with timestamps from the anchor (the first time, the last `tail` lines
    /// if asked): queues the lines not read yet and moves the anchor to the last line's
    /// second. A container still starting, or a pod gone, gives nothing.
    async fn catch_up(&mut self) -> Result<()> {
        let tail = self
            .tail
            .filter(|_| self.anchor.is_none() && self.read == 0);
        let params = LogParams {
            container: self.container.clone(),
            timestamps: true,
            since_time: self.anchor.map(|a| a.since),
            tail_lines: tail,
            ..LogParams::default()
        };
        let text = loop {
            match self.pods.logs(&self.pod, &params).await {
                Ok(text) => break text,
                Err(kube::Error::Api(e)) if e.code == 400 || e.code == 404 => return Ok(()),
                Err(e) => self.failed(e).await?,
            }
        };
        self.failures = 0;
        let lines = text
            .lines()
            .map(|line| {
                split_timestamp(line).ok_or_else(|| {
                    anyhow!("pod {}: a log line without a timestamp: {line:?}", self.pod)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // A tail's first line is where the follower starts.
        let first = match tail {
            Some(_) => self.read,
            None => self.anchor.map_or(0, |a| a.line),
        };
        let (new, anchor) = catch_up_lines(first, self.read, lines);
        self.read += new.len();
        self.pending.extend(new);
        self.anchor = anchor.or(self.anchor);
        Ok(())
    }

    /// Opens a followed connection from the anchor (after the first `tail` lines, read
    /// first, when asked). Waits while the container starts; gives up on a pod that is gone.
    async fn open(&mut self) -> Result<()> {
        if self.uid.is_none() && self.fate().await == Fate::Gone {
            self.state = self.gone();
            return Ok(());
        }
        if self.tail.is_some() && self.anchor.is_none() && self.read == 0 {
            self.catch_up().await?;
            if self.anchor.is_none() {
                // Nothing printed yet: the tail is the whole log.
                self.tail = None;
            }
            return Ok(());
        }
        let params = LogParams {
            container: self.container.clone(),
            follow: true,
            since_time: self.anchor.map(|a| a.since),
            ..LogParams::default()
        };
        let result = self.pods.log_stream(&self.pod, &params).await;
        match result {
            Ok(reader) => {
                self.failures = 0;
                self.state = State::Open {
                    reader: Box::pin(reader),
                    next: self.anchor.map_or(0, |a| a.line),
                };
            }
            Err(kube::Error::Api(e)) if e.code == 404 => self.state = self.gone(),
            // Still starting (ContainerCreating): ask again soon, unless it never will.
            Err(kube::Error::Api(e)) if e.code == 400 => match self.fate().await {
                Fate::Running => tokio::time::sleep(STARTING_WAIT).await,
                Fate::Gone => self.state = self.gone(),
                Fate::Ended => bail!("pod {}: cannot read its log: {}", self.pod, e.message),
            },
            Err(e) => self.failed(e).await?,
        }
        Ok(())
    }

    /// Counts a failed request and waits before the next; gives up after too many.
    async fn failed(&mut self, e: kube::Error) -> Result<()> {
        self.failures += 1;
        if self.failures >= MAX_FAILURES {
            bail!(
                "pod {}: reading its log failed {} times in a row, the last: {e}",
                self.pod,
                self.failures
            );
        }
        tokio::time::sleep(backoff(self.failures)).await;
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

/// The lines of a timestamped read whose first line is line `first`: those from line `read`
/// on (the ones not read yet), and the anchor at the last line's second (None for no lines).
fn catch_up_lines(
    first: usize,
    read: usize,
    lines: Vec<(Timestamp, String)>,
) -> (Vec<String>, Option<Anchor>) {
    let anchor = lines.last().map(|(at, _)| {
        let since = whole_second(*at);
        let from = lines.iter().position(|(at, _)| *at >= since).unwrap_or(0);
        Anchor {
            since,
            line: first + from,
        }
    });
    let new = lines
        .into_iter()
        .skip(read.saturating_sub(first))
        .map(|(_, line)| line)
        .collect();
    (new, anchor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_catch_up_read_gives_the_lines_not_read_and_anchors_at_the_last_lines_second() {
        // Lines 10.. from the anchor; 12 were read: c and d are new, and the last second
        // (3s) starts at line 12 (c), which a read from 3s would start with.
        let read = vec![
            (at("2026-01-01T00:00:02.5Z"), "a".to_string()),
            (at("2026-01-01T00:00:02.7Z"), "b".to_string()),
            (at("2026-01-01T00:00:03.1Z"), "c".to_string()),
            (at("2026-01-01T00:00:03.9Z"), "d".to_string()),
        ];
        let (new, anchor) = catch_up_lines(10, 12, read);
        assert_eq!(new, ["c", "d"]);
        assert_eq!(
            anchor,
            Some(Anchor {
                since: at("2026-01-01T00:00:03Z"),
                line: 12
            })
        );
        assert_eq!(catch_up_lines(0, 0, Vec::new()), (Vec::new(), None));
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
