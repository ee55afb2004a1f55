"""Timing helpers shared by the benchmark scripts of this folder (each imports this module as `_timing`).

A device runs its kernels asynchronously: a timer must wait for them before it reads the clock.
"""
import time

import torch


def sync(device):
    "Wait for the kernels queued on `device` (CUDA, MPS; nothing to wait for on the CPU)"
    if device.type == 'cuda': torch.cuda.synchronize()
    elif device.type == 'mps': torch.mps.synchronize()


def time_passes(f, steps, device):
    "Seconds per call of `f()`, over `steps` calls, the device synchronised before and after"
    sync(device)
    start = time.perf_counter()
    for _ in range(steps): f()
    sync(device)
    return (time.perf_counter() - start) / steps
