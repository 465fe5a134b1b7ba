//! Writes scalars to an event file in TensorFlow 2's form (a rank-0 DT_FLOAT tensor in
//! `tensor_content`, tagged for the `scalars` plugin), which TensorBoard 2.x reads.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::proto::{
    event::What, summary_value::Value, Event, PluginData, Summary, SummaryMetadata, SummaryValue,
    TensorProto, TensorShapeProto, DATA_CLASS_SCALAR, DT_FLOAT,
};
use crate::record::write_record;

/// The `file_version` of the first event of every file.
const FILE_VERSION: &str = "brain.Event:2";

/// Appends events to one event file. Records are buffered until [`flush`](Self::flush).
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
}

impl EventWriter {
    /// Opens `path` for appending, creating it (and its directory) with the file-version
    /// record when it does not exist yet. The name must contain `tfevents` for TensorBoard
    /// to see it; see [`event_file_name`].
    pub fn append(path: impl Into<PathBuf>, wall_time: f64) -> io::Result<Self> {
        let path = path.into();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut writer = EventWriter {
            path,
            buffer: Vec::new(),
            file,
        };
        if writer.file.metadata()?.len() == 0 {
            writer.push(&Event {
                wall_time,
                step: 0,
                what: Some(What::FileVersion(FILE_VERSION.to_string())),
            });
        }
        Ok(writer)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds one scalar.
    pub fn add_scalar(&mut self, tag: &str, step: i64, wall_time: f64, value: f32) {
        let value = SummaryValue {
            tag: tag.to_string(),
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: "scalars".to_string(),
                    content: Vec::new(),
                }),
                data_class: DATA_CLASS_SCALAR,
            }),
            value: Some(Value::Tensor(TensorProto {
                dtype: DT_FLOAT,
                tensor_shape: Some(TensorShapeProto::default()),
                tensor_content: value.to_le_bytes().to_vec(),
                ..TensorProto::default()
            })),
        };
        self.push(&Event {
            wall_time,
            step,
            what: Some(What::Summary(Summary { value: vec![value] })),
        });
    }

    fn push(&mut self, event: &Event) {
        write_record(&mut self.buffer, &event.encode_to_vec());
    }

    /// Writes the buffered records to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.file.write_all(&self.buffer)?;
        self.buffer.clear();
        self.file.flush()
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        // Best effort; callers that care call flush() and see its error.
        let _ = self.flush();
    }
}

/// A TensorBoard-style file name: `events.out.tfevents.<unix seconds>.<host>.<suffix>`, so
/// files of one run sort in the order they were created.
pub fn event_file_name(created: f64, suffix: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("events.out.tfevents.{:010}.{host}.{suffix}", created as u64)
}
