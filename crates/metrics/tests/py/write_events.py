"""Writes event files with the writers people use, in every scalar encoding, and prints the
points each run should hold as JSON: {run: {tag: [[step, value], ...]}}.

Runs (directories under OUT):
  tensorboardx/  tensorboardX's SummaryWriter: simple_value (TF1 style, torch's default)
  tensorboard/   TensorBoard's own tensorboard.summary.Writer: DT_FLOAT tensor, float_val
  tensors/       TensorBoard's EventFileWriter with tensor values built from TensorBoard's
                 protos, as TF2's tf.summary.scalar (tensor_content) and torch's new_style
                 (float_val, double_val) write them, plus half/bfloat16/int64 tensors and
                 values that are not scalars (image, histogram, text, a rank-1 tensor)
  restart/       a writer whose steps go back (a job restarted from a checkpoint), then a
                 second file from the restarted process

Usage: python3 write_events.py OUT
"""

import json
import struct
import sys
import time

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.compat.proto import types_pb2
from tensorboard.summary import Writer
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboardX import SummaryWriter

out = sys.argv[1]
expected = {}


def expect(run, tag, step, value):
    expected.setdefault(run, {}).setdefault(tag, []).append([step, float(value)])


def f32(x):
    return float(np.float32(x))


# tensorboardX: simple_value.
w = SummaryWriter(f"{out}/tensorboardx")
for step in range(0, 50):
    loss = 2.0 / (step + 1)
    w.add_scalar("loss", loss, step)
    expect("tensorboardx", "loss", step, f32(loss))
    if step % 10 == 0:
        w.add_scalar("lr", 0.1 * 0.5 ** (step // 10), step)
        expect("tensorboardx", "lr", step, f32(0.1 * 0.5 ** (step // 10)))
w.add_histogram("weights", np.arange(10.0), 3)
w.add_text("note", "not a scalar", 3)
w.close()

# TensorBoard's own writer.
w = Writer(f"{out}/tensorboard")
for step in range(1, 21):
    w.add_scalar("accuracy", 1 - 1 / step, step=step)
    expect("tensorboard", "accuracy", step, f32(1 - 1 / step))
w.close()


def scalar_metadata():
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )


def tensor_event(step, tag, tensor, metadata=None):
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if metadata is not None:
        value.metadata.CopyFrom(metadata)
    return event_pb2.Event(
        wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[value])
    )


def rank0(dtype, **fields):
    return tensor_pb2.TensorProto(
        dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(), **fields
    )


def half_bits(x, dtype):
    if dtype == types_pb2.DT_HALF:
        return int(np.array(x, dtype=np.float16).view(np.uint16))
    # bfloat16: the high 16 bits of the float32.
    return int(np.array(x, dtype=np.float32).view(np.uint32)) >> 16


def bits_value(bits, dtype):
    if dtype == types_pb2.DT_HALF:
        return float(np.array(bits, dtype=np.uint16).view(np.float16))
    return float(np.array(bits << 16, dtype=np.uint32).view(np.float32))


w = EventFileWriter(f"{out}/tensors")
for step in range(10):
    v = 0.5 + step / 7
    events = [
        # TF2 tf.summary.scalar: tensor_content, metadata on the first event only.
        ("tf2_content", rank0(types_pb2.DT_FLOAT, tensor_content=struct.pack("<f", v)), f32(v),
         scalar_metadata() if step == 0 else None),
        # torch new_style=True: float_val.
        ("torch_float_val", rank0(types_pb2.DT_FLOAT, float_val=[v]), f32(v), scalar_metadata()),
        # torch new_style=True, double_precision=True: double_val.
        ("torch_double_val", rank0(types_pb2.DT_DOUBLE, double_val=[v]), v, scalar_metadata()),
        ("double_content", rank0(types_pb2.DT_DOUBLE, tensor_content=struct.pack("<d", v)), v,
         None),
        ("half_val", rank0(types_pb2.DT_HALF, half_val=[half_bits(v, types_pb2.DT_HALF)]),
         bits_value(half_bits(v, types_pb2.DT_HALF), types_pb2.DT_HALF), None),
        ("half_content", rank0(types_pb2.DT_HALF,
                               tensor_content=struct.pack("<H", half_bits(v, types_pb2.DT_HALF))),
         bits_value(half_bits(v, types_pb2.DT_HALF), types_pb2.DT_HALF), None),
        ("bfloat16_val", rank0(types_pb2.DT_BFLOAT16,
                               half_val=[half_bits(v, types_pb2.DT_BFLOAT16)]),
         bits_value(half_bits(v, types_pb2.DT_BFLOAT16), types_pb2.DT_BFLOAT16), None),
        ("int64_val", rank0(types_pb2.DT_INT64, int64_val=[step * 1000]), step * 1000, None),
    ]
    for tag, tensor, value, metadata in events:
        w.add_event(tensor_event(step, tag, tensor, metadata))
        expect("tensors", tag, step, value)
    # Not scalars: a rank-1 tensor, a string tensor and an image are skipped.
    vector = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=2)]
        ),
        float_val=[1.0, 2.0],
    )
    w.add_event(tensor_event(step, "vector", vector))
    w.add_event(tensor_event(step, "text", rank0(types_pb2.DT_STRING, string_val=[b"hi"])))
    image = summary_pb2.Summary.Value(
        tag="image", image=summary_pb2.Summary.Image(height=1, width=1, encoded_image_string=b"x")
    )
    w.add_event(event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[image])))
w.close()

# A restart: steps 0..9, then the process restarts from step 5 (same file, as a writer
# that appends), then a new process writes a second file from step 8.
w = SummaryWriter(f"{out}/restart", filename_suffix=".1")
for step in range(10):
    w.add_scalar("loss", 100 + step, step)
for step in range(5, 12):
    w.add_scalar("loss", 200 + step, step)
w.close()
w = SummaryWriter(f"{out}/restart", filename_suffix=".2")
for step in range(8, 15):
    w.add_scalar("loss", -step, step)
w.close()
# Survivors: 0..4 of the first run, 5..7 of the restarted one, 8..14 of the second file.
for step in range(5):
    expect("restart", "loss", step, 100 + step)
for step in range(5, 8):
    expect("restart", "loss", step, 200 + step)
for step in range(8, 15):
    expect("restart", "loss", step, -step)

json.dump(expected, sys.stdout)
