"""Both cores for one training step: data parallelism over threads, and the BLAS threads.

NumPy releases Python's lock (the GIL) inside its loops and BLAS calls, so two threads, each
running half of a batch through its own replica of the model, keep two cores busy, elementwise
work included (one NumPy call uses one core). BLAS then runs one thread per worker, or its own
threads would fight the workers for the cores.

Works on any OS, any core count and any BLAS: cores are counted portably, and BLAS threads are
set through threadpoolctl, which knows OpenBLAS, MKL and BLIS, and restores them afterwards.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


def cpu_count():
    """The cores this process may run on: os.process_cpu_count() (Python 3.13+), else the
    affinity mask where the OS has one (Linux), else every core of the machine; at most
    MINIMODEL_CORES, the share a sweep running several trainings at once gives each."""
    if hasattr(os, "process_cpu_count"):
        n = os.process_cpu_count() or 1
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count() or 1
    share = os.environ.get("MINIMODEL_CORES", "")
    return min(n, int(share)) if share.isdigit() and int(share) >= 1 else n


def blas_info():
    """The BLAS NumPy calls: library, version, kernel for this CPU (e.g. 'Haswell', 'SkylakeX')
    and threads; None in each field where threadpoolctl finds no BLAS it knows."""
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            return {"name": lib.get("internal_api"), "version": lib.get("version"),
                    "kernel": lib.get("architecture"), "threads": lib.get("num_threads")}
    return {"name": None, "version": None, "kernel": None, "threads": None}


@contextmanager
def blas_threads(n):
    """BLAS limited to n threads inside the block; as it was before, after it."""
    with threadpool_limits(limits=n, user_api="blas"):
        yield


class DataParallel:
    """Forward and backward on fixed shards of each batch, one model replica per shard, run in
    parallel threads; the shards' gradients are summed into the main model's.

    `model` has forward(x, train), backward(dlogits), zero_grad(), flat_grads (every gradient as
    one vector) and replica(seed) (a model sharing its parameters, with its own activations,
    gradients and dropout). `loss(logits, y) -> (mean loss, dlogits)`.

    The shard count is part of the recipe, not of the machine: each shard draws its dropout from
    its own generator, so a result depends on the seed and the shard count, never on how many
    cores run the shards (on one core they run one after the other). Use it as a context
    (`with DataParallel(...) as parallel:`): BLAS runs one thread per worker inside, and the
    process gets its BLAS threads and the pool's threads back at the end.
    """

    def __init__(self, model, loss=None, seed=0, n_shards=2):
        self.model, self.loss = model, loss
        self.replicas = [model] + [model.replica(seed=[seed, i]) for i in range(1, n_shards)]
        self.workers = min(n_shards, cpu_count())
        self.pool = None

    def __enter__(self):
        self._blas = threadpool_limits(limits=1, user_api="blas")
        self.pool = ThreadPoolExecutor(self.workers)
        return self

    def __exit__(self, *exc):
        self.pool.shutdown()
        self._blas.restore_original_limits()
        self.pool = None

    def _map(self, work, x):
        """work(replica, idx) over the shards of range(len(x)), in parallel -> list of results.
        Fewer shards than replicas when x is smaller than the shard count (none is empty)."""
        if self.pool is None:
            raise RuntimeError("use DataParallel as a context: `with DataParallel(...) as dp:`")
        return list(self.pool.map(work, self.replicas, self._shards(len(x))))

    def _shards(self, n):
        return [i for i in np.array_split(np.arange(n), len(self.replicas)) if len(i)]

    def train_forward(self, x):
        """Training-mode logits (B, K) of a batch: each shard through its replica, which keeps
        its activations for `backward`."""
        return np.concatenate(self._map(lambda replica, idx: replica.forward(x[idx], train=True),
                                        x))

    def backward(self, dlogits):
        """Add the batch's gradients into the model's, as model.backward(dlogits) would: each
        replica backward on its shard's rows, the other replicas' gradients added to the
        model's (whose own are added to what it holds: zero_grad first, as without shards)."""

        def work(replica, idx):
            if replica is not self.model:
                replica.zero_grad()
            replica.backward(dlogits[idx])

        used = len(self._map(work, dlogits))
        for replica in self.replicas[1:used]:
            self.model.flat_grads += replica.flat_grads

    def train_step(self, x, y):
        """Fill the model's gradients with those of the mean loss over the batch
        -> (loss, logits)."""
        logits = self.train_forward(x)
        loss, dlogits = self.loss(logits, y)
        self.model.zero_grad()
        self.backward(dlogits)
        return loss, logits

    def forward(self, x, chunk=32):
        """Evaluation-mode outputs (no dropout) of any number of inputs, shards in parallel.
        Each replica takes its shard `chunk` inputs at a time, so its working set stays in
        cache (a shard of 128 in one call took 1.5× as long)."""

        def work(replica, idx):
            return np.concatenate([replica.forward(x[idx[i:i + chunk]])
                                   for i in range(0, len(idx), chunk)])

        return np.concatenate(self._map(work, x))
