//! A trace: one job per CSV line, with a header naming the columns. `submit_time_s`,
//! `duration_s` and `num_gpus` are required; `job_id` names the job (else its line), and
//! `user` and `priority` are read when present. Other columns are ignored.

use std::path::Path;

/// A job of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceJob {
    /// Its name in the trace.
    pub id: String,
    /// When it is submitted (seconds).
    pub submit_s: f64,
    /// How long it runs once started, without interruption (seconds).
    pub duration_s: f64,
    /// GPUs it needs at once.
    pub gpus: u32,
    /// Who submitted it (for fair share; empty when the trace does not say).
    pub user: String,
    /// Its priority (0 when the trace does not say).
    pub priority: i32,
}

/// A trace that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a job.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads the trace at `path`.
pub fn read_trace(path: &Path) -> Result<Vec<TraceJob>, TraceError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
        path: name.clone(),
        source,
    })?;
    parse_trace(&name, &text)
}

/// Parses trace text; `path` names it in errors. Jobs come back sorted by submit time.
pub fn parse_trace(path: &str, text: &str) -> Result<Vec<TraceJob>, TraceError> {
    let err = |line: usize, message: String| TraceError::Line {
        path: path.to_string(),
        line,
        message,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| err(1, "empty trace".into()))?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| columns.iter().position(|c| *c == name);
    let need = |name: &str| {
        col(name).ok_or_else(|| {
            err(
                1,
                format!("the header has no `{name}` column (columns: {header})"),
            )
        })
    };
    let (submit, duration, gpus) = (
        need("submit_time_s")?,
        need("duration_s")?,
        need("num_gpus")?,
    );
    let (id, user, priority) = (col("job_id"), col("user"), col("priority"));
    let mut jobs = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            return Err(err(
                n,
                format!("{} fields, the header has {}", fields.len(), columns.len()),
            ));
        }
        let number = |c: usize| -> Result<f64, TraceError> {
            match fields[c].parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                _ => Err(err(
                    n,
                    format!(
                        "{}: {:?} is not a number of seconds >= 0",
                        columns[c], fields[c]
                    ),
                )),
            }
        };
        let gpu_count = fields[gpus].parse::<u32>().map_err(|_| {
            err(
                n,
                format!("num_gpus: {:?} is not a whole number", fields[gpus]),
            )
        })?;
        jobs.push(TraceJob {
            id: id.map_or_else(|| format!("line-{n}"), |c| fields[c].to_string()),
            submit_s: number(submit)?,
            duration_s: number(duration)?,
            gpus: gpu_count,
            user: user.map_or_else(String::new, |c| fields[c].to_string()),
            priority: match priority {
                Some(c) => fields[c]
                    .parse()
                    .map_err(|_| err(n, format!("priority: {:?} is not an integer", fields[c])))?,
                None => 0,
            },
        });
    }
    jobs.sort_by(|a, b| a.submit_s.total_cmp(&b.submit_s));
    Ok(jobs)
}
