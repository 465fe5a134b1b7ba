"""Reads a run directory with TensorBoard's own loader (plugin_event_accumulator, the one
TensorBoard's scalars plugin uses) and prints what it holds as JSON:
{"scalars_tags": [...], "points": {tag: [[step, value, wall_time], ...]}}.

Usage: python3 read_events.py RUN_DIR
"""

import json
import sys

from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.util import tensor_util

acc = pea.EventAccumulator(sys.argv[1], size_guidance={pea.TENSORS: 0})
acc.Reload()
points = {}
for tag in acc.Tags()[pea.TENSORS]:
    points[tag] = [
        [e.step, float(tensor_util.make_ndarray(e.tensor_proto)), e.wall_time]
        for e in acc.Tensors(tag)
    ]
print(json.dumps({"scalars_tags": sorted(acc.PluginTagToContent("scalars")), "points": points}))
