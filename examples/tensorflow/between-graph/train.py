#!/usr/bin/env python3
"""Between-graph parameter-server training, TF1 style (the classic Kubeflow/ACK example).

Every replica builds the same graph; `replica_device_setter` puts the variables on the
parameter servers (2 by default) and the computation on the worker. Workers train
asynchronously; worker 0 is the chief: it initialises or restores the variables and writes
checkpoints to TRAINCTL_CHECKPOINT_DIR (every --checkpoint_steps and on SIGTERM). The wiring comes only from TF_CONFIG. A PS serves
until stopped; the launcher stops it (SIGTERM) when worker 0 has finished.

The data set is generated (../tfexample.py), the same in every replica; worker i trains on
shard i of the training set.
"""

import os
import sys
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tfexample import (  # noqa: E402
    CLASSES,
    FEATURES,
    HIDDEN,
    checkpoint_dir,
    cluster_and_task,
    Termination,
    dataset,
    parse_args,
    serve_until_sigterm,
)


def build_model(lr):
    """The graph: placeholders, a 20-32-4 network, loss, accuracy and the training op."""
    x = tf.compat.v1.placeholder(tf.float32, [None, FEATURES], name="x")
    y = tf.compat.v1.placeholder(tf.int64, [None], name="y")
    init = tf.compat.v1.glorot_uniform_initializer(seed=1)
    w1 = tf.compat.v1.get_variable("w1", [FEATURES, HIDDEN], initializer=init)
    b1 = tf.compat.v1.get_variable("b1", [HIDDEN], initializer=tf.compat.v1.zeros_initializer())
    w2 = tf.compat.v1.get_variable("w2", [HIDDEN, CLASSES], initializer=init)
    b2 = tf.compat.v1.get_variable("b2", [CLASSES], initializer=tf.compat.v1.zeros_initializer())
    logits = tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2) + b2
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
    step = tf.compat.v1.train.get_or_create_global_step()
    train = tf.compat.v1.train.GradientDescentOptimizer(lr).minimize(loss, global_step=step)
    return x, y, loss, accuracy, step, train


def main():
    args = parse_args(__doc__, learning_rate=0.5)
    cluster, role, index = cluster_and_task()
    tf.get_logger().setLevel("ERROR")
    tf.compat.v1.disable_eager_execution()
    # A worker's sessions talk to the PS and itself only: the other workers may be gone.
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=1,
        inter_op_parallelism_threads=2,
        device_filters=["/job:ps", f"/job:{role}/task:{index}"],
    )
    spec = tf.train.ClusterSpec(cluster)
    server = tf.compat.v1.train.Server(spec, job_name=role, task_index=index, config=config)
    if role == "ps":
        print(f"ps {index}: serving at {cluster['ps'][index]}", flush=True)
        serve_until_sigterm(f"ps {index}")
    if role != "worker":
        sys.exit(f"train.py: error: role {role!r} is not used here (ps and worker only)")

    workers = len(cluster["worker"])
    is_chief = index == 0
    x_train, y_train, x_test, y_test = dataset()
    x_shard, y_shard = x_train[index::workers], y_train[index::workers]
    device = tf.compat.v1.train.replica_device_setter(
        worker_device=f"/job:worker/task:{index}", cluster=spec
    )
    with tf.compat.v1.device(device):
        x, y, loss, accuracy, global_step, train = build_model(args.learning_rate)

    termination = Termination()
    saver = tf.compat.v1.train.Saver(max_to_keep=3)
    manager = tf.compat.v1.train.SessionManager(
        ready_op=tf.compat.v1.report_uninitialized_variables(), recovery_wait_secs=0.5
    )
    ckpt_dir = checkpoint_dir()
    latest = ckpt_dir and tf.train.latest_checkpoint(ckpt_dir)
    if is_chief:
        # Restores the latest checkpoint when there is one, else initialises the variables.
        sess = manager.prepare_session(
            server.target,
            init_op=tf.compat.v1.global_variables_initializer(),
            saver=saver,
            checkpoint_dir=ckpt_dir,
            config=config,
        )
    else:
        sess = manager.wait_for_session(server.target, config=config)
    start = sess.run(global_step)
    if is_chief and latest:
        restored = int(latest.rsplit("-", 1)[1])
        print(
            f"Restored step: {restored} (from {os.path.basename(latest)}; global step now {start})",
            flush=True,
        )
    else:
        print(f"worker {index}: starting at global step {start}", flush=True)
    train_loop(args, sess, (x, y, loss, global_step, train), x_shard, y_shard, start, workers,
               save=(lambda step: saver.save(sess, os.path.join(ckpt_dir, "model.ckpt"), step))
               if is_chief and ckpt_dir else None, termination=termination)
    if is_chief:
        acc = sess.run(accuracy, feed_dict={x: x_test, y: y_test})
        print(f"Test-Accuracy: {acc:.4f}\naccuracy={acc:.4f}", flush=True)
    print(f"worker {index}: done", flush=True)


def train_loop(args, sess, graph, x_shard, y_shard, start, workers, save, termination):
    """This worker's share of the epochs, from where the global step says it left off; a
    progress line every 20 batches and at the end of each epoch, a checkpoint (chief) every
    --checkpoint_steps global steps and on SIGTERM."""
    x, y, loss, global_step, train = graph
    batches = len(x_shard) // args.batch_size
    last_step = args.epochs * batches * workers
    done, step, saved = start // workers, start, start
    costs, times = [], []
    while done < args.epochs * batches and step < last_step:
        epoch, batch = divmod(done, batches)
        lo = batch * args.batch_size
        feed = {x: x_shard[lo : lo + args.batch_size], y: y_shard[lo : lo + args.batch_size]}
        t0 = time.perf_counter()
        _, cost, step = sess.run([train, loss, global_step], feed_dict=feed)
        times.append(time.perf_counter() - t0)
        costs.append(cost)
        done += 1
        if done % 20 == 0 or batch + 1 == batches:
            print(
                f"Step: {step}, Epoch: {epoch + 1}, Batch: {batch + 1} of {batches}, "
                f"Cost: {np.mean(costs):.4f}, AvgTime: {1000 * np.mean(times):.2f}ms",
                flush=True,
            )
            costs, times = [], []
        if termination.requested:
            if save:
                save(step)
            termination.exit(f"saved step {step}" if save else f"stopped at step {step}")
        if save and step - saved >= args.checkpoint_steps:
            save(step)
            saved = step
    if save:
        save(step)


if __name__ == "__main__":
    main()
