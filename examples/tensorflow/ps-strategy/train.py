#!/usr/bin/env python3
"""TF2 ParameterServerStrategy: a chief drives the training, workers compute, a PS holds the
variables. The wiring comes only from TF_CONFIG (TFConfigClusterResolver).

Workers and the PS only run a `tf.distribute.Server` until stopped; the launcher stops them
(SIGTERM) when the chief has finished. The chief schedules the steps on the workers with a
ClusterCoordinator, keeps the model in a `tf.train.CheckpointManager` in
TRAINCTL_CHECKPOINT_DIR (restored at start, saved every --checkpoint_steps, at the end and,
after the running steps, on SIGTERM),
and writes `loss` and `accuracy` with `tf.summary` to TRAINCTL_LOG_DIR/chief. A worker that
dies is waited for and its steps are run again by the coordinator.
"""

import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tfexample import (  # noqa: E402
    CLASSES,
    FEATURES,
    HIDDEN,
    TRAIN,
    Termination,
    checkpoint_dir,
    dataset,
    glorot,
    log_dir,
    parse_args,
    quiet_and_small,
    serve_until_sigterm,
)


class Model(tf.Module):
    """A 20-32-4 network and its step counter."""

    def __init__(self):
        super().__init__()
        self.w1 = tf.Variable(glorot(FEATURES, HIDDEN, seed=1), name="w1")
        self.b1 = tf.Variable(tf.zeros([HIDDEN]), name="b1")
        self.w2 = tf.Variable(glorot(HIDDEN, CLASSES, seed=2), name="w2")
        self.b2 = tf.Variable(tf.zeros([CLASSES]), name="b2")
        self.step = tf.Variable(0, dtype=tf.int64, name="step")

    def logits(self, x):
        return tf.matmul(tf.nn.relu(tf.matmul(x, self.w1) + self.b1), self.w2) + self.b2

    def weights(self):
        return [self.w1, self.b1, self.w2, self.b2]


def serve(resolver):
    """A worker or PS: serve the chief's requests until stopped."""
    server = tf.distribute.Server(
        resolver.cluster_spec(),
        job_name=resolver.task_type,
        task_index=resolver.task_id,
        protocol=resolver.rpc_layer or "grpc",
        start=True,
    )
    name = f"{resolver.task_type} {resolver.task_id}"
    print(f"{name}: serving", flush=True)
    serve_until_sigterm(name)  # `server` stays referenced meanwhile: deleting it stops it
    del server


def main():
    args = parse_args(__doc__, learning_rate=0.5)
    quiet_and_small(tf)
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if resolver.task_type in ("worker", "ps"):
        serve(resolver)
        return
    if resolver.task_type != "chief":
        sys.exit(f"train.py: error: role {resolver.task_type!r} is not used here (chief, worker, ps)")

    termination = Termination()
    strategy = tf.distribute.experimental.ParameterServerStrategy(resolver)
    coordinator = tf.distribute.experimental.coordinator.ClusterCoordinator(strategy)
    with strategy.scope():
        model = Model()
    checkpoint = tf.train.Checkpoint(model=model)
    ckpt_dir = checkpoint_dir()
    manager = ckpt_dir and tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=3)
    if manager and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        print(f"Restored step: {int(model.step.numpy())} (from {manager.latest_checkpoint})", flush=True)

    x_train, y_train, x_test, y_test = dataset()

    def dataset_fn():
        data = tf.data.Dataset.from_tensor_slices((x_train, y_train))
        return data.shuffle(TRAIN, seed=7).repeat().batch(args.batch_size)

    iterator = iter(coordinator.create_per_worker_dataset(dataset_fn))
    lr = args.learning_rate

    @tf.function
    def train_step(iterator):
        x, y = next(iterator)

        def replica_fn(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=model.logits(x))
                )
            for var, grad in zip(model.weights(), tape.gradient(loss, model.weights())):
                var.assign_sub(lr * grad)
            model.step.assign_add(1)
            return loss

        return strategy.run(replica_fn, args=(x, y))

    steps_per_epoch = TRAIN // args.batch_size
    total = args.epochs * steps_per_epoch
    writer = tf.summary.create_file_writer(log_dir("chief"))
    step = int(model.step.numpy())
    while step < total:
        # Checkpoints (and a SIGTERM's exit) come between chunks of scheduled steps.
        chunk = min(args.checkpoint_steps, total - step)
        losses = [coordinator.schedule(train_step, args=(iterator,)) for _ in range(chunk)]
        coordinator.join()
        step = int(model.step.numpy())
        loss = float(np.mean([l.fetch() for l in losses]))
        accuracy = float(
            tf.reduce_mean(tf.cast(tf.argmax(model.logits(x_test), 1) == y_test, tf.float32))
        )
        with writer.as_default():
            tf.summary.scalar("loss", loss, step=step)
            tf.summary.scalar("accuracy", accuracy, step=step)
        writer.flush()
        if manager:
            manager.save(checkpoint_number=step)
        print(f"step {step} of {total}: loss {loss:.4f}, test accuracy {accuracy:.4f}", flush=True)
        if termination.requested:
            termination.exit(f"saved step {step}" if manager else f"stopped at step {step}")
    print(f"Test-Accuracy: {accuracy:.4f}\naccuracy={accuracy:.4f}", flush=True)
    # The coordinator's threads watch the workers forever; the job is done.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
