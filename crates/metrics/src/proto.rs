//! The few TensorFlow protobuf messages an event file of scalars needs, declared with prost's
//! derive so no `protoc` is needed at build time. Field numbers and types follow
//! `tensorflow/core/util/event.proto`, `framework/summary.proto`, `framework/tensor.proto` and
//! `framework/tensor_shape.proto`; fields trainctl never reads are left out (prost skips them).

/// One record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Global step of the summaries in this event.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event carries.
    #[prost(oneof = "event::What", tags = "3, 5")]
    pub what: Option<event::What>,
}

/// The payloads of an [`Event`].
pub mod event {
    /// What an event carries (graphs, session logs and run metadata are skipped).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        /// `brain.Event:2`, the first record of every file.
        #[prost(string, tag = "3")]
        FileVersion(String),
        /// Summary values.
        #[prost(message, tag = "5")]
        Summary(super::Summary),
    }
}

/// A set of tagged values at one step.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// One tagged value of a [`Summary`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// The series name, such as `loss`.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// Which plugin reads the value.
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    /// The value itself.
    #[prost(oneof = "summary_value::Value", tags = "2, 8")]
    pub value: Option<summary_value::Value>,
}

/// The encodings of a [`SummaryValue`] (images, audio and histograms are skipped).
pub mod summary_value {
    /// A value: TF1 style `simple_value`, or a TF2 style tensor.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// TF1, tensorboardX and torch's default.
        #[prost(float, tag = "2")]
        SimpleValue(f32),
        /// TF2 `tf.summary.scalar` and torch's `new_style`.
        #[prost(message, tag = "8")]
        Tensor(super::TensorProto),
    }
}

/// Which plugin a summary value belongs to.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// The plugin, such as `scalars`.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
    /// `DATA_CLASS_SCALAR` (1) for scalars.
    #[prost(int32, tag = "4")]
    pub data_class: i32,
}

/// The plugin a value is meant for.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    /// Plugin name.
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// Plugin-specific bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `SummaryMetadata.data_class` of a scalar.
pub const DATA_CLASS_SCALAR: i32 = 1;
/// `DataType` code of 32-bit floats.
pub const DT_FLOAT: i32 = 1;
/// `DataType` code of 64-bit floats.
pub const DT_DOUBLE: i32 = 2;
/// `DataType` code of 32-bit integers.
pub const DT_INT32: i32 = 3;
/// `DataType` code of 64-bit integers.
pub const DT_INT64: i32 = 9;
/// `DataType` code of bfloat16.
pub const DT_BFLOAT16: i32 = 14;
/// `DataType` code of IEEE half floats.
pub const DT_HALF: i32 = 19;

/// A tensor; trainctl reads rank-0 (or one-element) numeric tensors as scalars.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// `DataType` code.
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// The shape; empty for a scalar.
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// Little-endian packed values (TF2's encoding).
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    /// DT_FLOAT values.
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    /// DT_DOUBLE values.
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    /// DT_INT32 (and smaller) values.
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    /// DT_INT64 values.
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    /// DT_HALF and DT_BFLOAT16 values, 16 bits in each int.
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
}

/// A tensor's shape.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The dimensions; none for a scalar.
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<TensorShapeDim>,
}

/// One dimension of a [`TensorShapeProto`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeDim {
    /// Its size.
    #[prost(int64, tag = "1")]
    pub size: i64,
}
