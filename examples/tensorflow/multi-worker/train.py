#!/usr/bin/env python3
"""TF2 MultiWorkerMirroredStrategy: every worker holds a copy of the model and gradients
are all-reduced between them each step (synchronous data parallelism). The wiring comes
only from TF_CONFIG.

Worker 0 is the chief: it keeps the checkpoints (`tf.train.CheckpointManager` in
TRAINCTL_CHECKPOINT_DIR) and writes `loss` and `accuracy` with `tf.summary` to
TRAINCTL_LOG_DIR/worker-0. Saving is collective, so the other workers save too, into a
scratch directory of their own. Every worker restores the latest checkpoint at start.
"""

import os
import shutil
import sys

import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tfexample import (  # noqa: E402
    CLASSES,
    FEATURES,
    HIDDEN,
    TRAIN,
    checkpoint_dir,
    cluster_and_task,
    dataset,
    glorot,
    log_dir,
    parse_args,
    quiet_and_small,
)


def main():
    args = parse_args(__doc__, learning_rate=0.5)
    quiet_and_small(tf)
    cluster, role, index = cluster_and_task()
    if role != "worker":
        sys.exit(f"train.py: error: role {role!r} is not used here (workers only)")
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    workers = len(cluster["worker"])
    is_chief = index == 0

    with strategy.scope():
        weights = [
            tf.Variable(glorot(FEATURES, HIDDEN, seed=1), name="w1"),
            tf.Variable(tf.zeros([HIDDEN]), name="b1"),
            tf.Variable(glorot(HIDDEN, CLASSES, seed=2), name="w2"),
            tf.Variable(tf.zeros([CLASSES]), name="b2"),
        ]
        step = tf.Variable(0, dtype=tf.int64, name="step")

    def logits(x):
        w1, b1, w2, b2 = weights
        return tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2) + b2

    checkpoint = tf.train.Checkpoint(weights=weights, step=step)
    ckpt_dir = checkpoint_dir()
    manager = None
    if ckpt_dir:
        latest = tf.train.latest_checkpoint(ckpt_dir)
        if latest:
            checkpoint.restore(latest).assert_existing_objects_matched()
            print(f"Restored step: {int(step.numpy())} (from {latest})", flush=True)
        # Non-chief workers save to scratch space (the save is collective) and delete it.
        own = ckpt_dir if is_chief else os.path.join(ckpt_dir, f".scratch-worker-{index}")
        manager = tf.train.CheckpointManager(checkpoint, own, max_to_keep=3)

    x_train, y_train, x_test, y_test = dataset()
    global_batch = args.batch_size * workers
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(TRAIN, seed=7)
        .repeat()
        .batch(global_batch)
        .with_options(options)
    )
    iterator = iter(strategy.experimental_distribute_dataset(data))
    lr = args.learning_rate

    @tf.function
    def train_step(iterator):
        def replica_fn(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits(x))
                ) / global_batch
            grads = tape.gradient(loss, weights)
            grads = tf.distribute.get_replica_context().all_reduce("sum", grads)
            for var, grad in zip(weights, grads):
                var.assign_sub(lr * grad)
            step.assign_add(1)
            return loss

        per_replica = strategy.run(replica_fn, args=next(iterator))
        return strategy.reduce("sum", per_replica, axis=None)

    total = args.epochs * (TRAIN // global_batch)
    writer = tf.summary.create_file_writer(log_dir(f"worker-{index}")) if is_chief else None
    current = int(step.numpy())
    # Skip the batches the restored steps already used.
    for _ in range(current):
        next(iterator)
    while current < total:
        chunk = min(args.checkpoint_steps, total - current)
        losses = [float(train_step(iterator)) for _ in range(chunk)]
        current = int(step.numpy())
        loss = sum(losses) / len(losses)
        accuracy = float(
            tf.reduce_mean(tf.cast(tf.argmax(logits(x_test), 1) == y_test, tf.float32))
        )
        if is_chief:
            with writer.as_default():
                tf.summary.scalar("loss", loss, step=current)
                tf.summary.scalar("accuracy", accuracy, step=current)
            writer.flush()
        if manager:
            manager.save(checkpoint_number=current)
        print(f"step {current} of {total}: loss {loss:.4f}, test accuracy {accuracy:.4f}", flush=True)
    if manager and not is_chief:
        shutil.rmtree(manager.directory, ignore_errors=True)
    print(f"Test-Accuracy: {accuracy:.4f}\naccuracy={accuracy:.4f}", flush=True)


if __name__ == "__main__":
    main()
