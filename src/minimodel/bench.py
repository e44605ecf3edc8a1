"""`python vit.py --bench`: the training step and inference timed on this machine, against
the FLOPs they do and the machine's own matmul ceiling. Speed is never asserted in a test (a
busy machine must not fail one); compare runs made side by side, and name the CPU and BLAS kernel.
"""

import os
import time

import numpy as np

from minimodel.parallel import DataParallel, blas_info, blas_threads, cpu_count


def flops_per_image(cfg):
    """Multiply-adds × 2 of one forward pass, as this code computes it (with [CLS], the last
    block updates it alone). A training step costs about 3× this: backward is two products per
    forward product."""
    d, T, F, hs = cfg.d_model, cfg.n_tokens, cfg.d_ff, cfg.d_model // cfg.n_heads

    def block(t_out):  # t_out tokens ask queries and go through W_o and the MLP
        qkv = 2 * T * d * 3 * d
        attention = 2 * 2 * cfg.n_heads * t_out * T * hs  # scores and att @ v
        return qkv + attention + 2 * t_out * d * d + 2 * 2 * t_out * d * F

    embed = 2 * cfg.n_patches * cfg.patch_dim * d
    last = block(1) if cfg.pool == "cls" else block(T)
    return embed + (cfg.n_blocks - 1) * block(T) + last + 2 * d * cfg.n_classes


def run(model, opt, loss, steps=20, repeats=7, log=print):
    """Time the training step (batch 32: forward, backward, optimiser update) and inference
    (batch 256) of `model`, after a warm-up; print the figures and return them."""
    cfg = model.cfg
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (256, cfg.image_size, cfg.image_size, 3)).astype(np.float32)
    y = rng.integers(0, cfg.n_classes, 256)

    def train_step():
        parallel.train_step(x[:32], y[:32])
        opt.step(1e-3)

    def timed(fn, n):  # the best and the median over `repeats` runs of n calls, s per call
        fn()
        fn()  # warm-up
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            runs.append((time.perf_counter() - t0) / n)
        return min(runs), float(np.median(runs))

    with DataParallel(model, loss) as parallel:
        step, step_median = timed(train_step, steps)
        infer, infer_median = timed(lambda: parallel.forward(x), max(1, steps // 4))
        blas = blas_info()  # as the step ran it: one thread per worker
    cores = cpu_count()
    with blas_threads(cores):  # the ceiling: BLAS on every core
        big = rng.normal(size=(2048, 2048)).astype(np.float32)
        matmul, _ = timed(lambda: big @ big, 3)
    flops = flops_per_image(cfg)
    r = {"train_ms_per_step": step * 1e3, "train_ms_median": step_median * 1e3,
         "train_images_per_s": 32 / step, "train_gflops": 3 * flops * 32 / step / 1e9,
         "infer_ms_per_batch": infer * 1e3, "infer_ms_median": infer_median * 1e3,
         "infer_images_per_s": 256 / infer, "infer_gflops": flops * 256 / infer / 1e9,
         "matmul_gflops": 2 * 2048**3 / matmul / 1e9, "blas": blas,
         "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
         "cores": cores, "mflops_per_image_forward": flops / 1e6}
    log(f"TinyViT {cfg.n_classes} classes, float32, {cores} cores; BLAS {blas['name']} "
        f"{blas['version']}, kernel {blas['kernel']}, {blas['threads']} thread per worker "
        f"(OPENBLAS_CORETYPE={r['openblas_coretype_env']})")
    log(f"forward: {r['mflops_per_image_forward']:.1f} MFLOP per image (training step ≈ 3×)")
    log(f"training step, batch 32:  {r['train_ms_per_step']:6.1f} ms best, "
        f"{r['train_ms_median']:6.1f} ms median  -> {r['train_images_per_s']:6.0f} images/s, "
        f"{r['train_gflops']:5.1f} GFLOP/s")
    log(f"inference,     batch 256: {r['infer_ms_per_batch']:6.1f} ms best, "
        f"{r['infer_ms_median']:6.1f} ms median  -> {r['infer_images_per_s']:6.0f} images/s, "
        f"{r['infer_gflops']:5.1f} GFLOP/s")
    log(f"ceiling: 2048×2048 float32 matmul on every core: {r['matmul_gflops']:.1f} GFLOP/s")
    return r
