"""Where the self-test's Newton-Schulz tolerances come from (CudaChecks.NS_FP64, NS_BATCH), in numpy on the CPU.

  python3 bench/ns_bf16_emulation.py

Emulates CudaOps.newtonSchulz: X = bf16(G / (||G|| + eps)), transposed when tall, then five steps of
A = bf16(X X^T), B = bf16(c A A + b A), X = bf16(B X + a X), each product rounded to fp32 before the bf16 rounding
(round to nearest even). Prints, per shape, its norm-wise relative distance to the same iteration in fp64, and the
largest distance between the clean run and three runs whose products carry relative Gaussian noise (1e-7, 1e-6):
another GEMM reduction order, as in the batched path, moves products by about that much and flips some bf16 roundings.
"""
import numpy as np

A, B, C = 3.4445, -4.7750, 2.0315


def bf16(x):
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return r.astype(np.uint32).view(np.float32).astype(np.float64)


def product(a, b, noise, rng):
    y = (a @ b).astype(np.float32).astype(np.float64)
    return y * (1 + noise * rng.standard_normal(y.shape)) if noise else y


def ns_bf16(g, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    inv = np.float32(1) / (np.float32(np.sqrt((g ** 2).sum())) + np.float32(1e-7))
    x = bf16(g.astype(np.float32) * inv)
    tall = g.shape[0] > g.shape[1]
    if tall:
        x = x.T
    for _ in range(5):
        a = bf16(product(x, x.T, noise, rng))
        b = bf16(C * product(a, a, noise, rng) + B * a)
        x = bf16(product(b, x, noise, rng) + A * x)
    return x.T if tall else x


def ns_fp64(g):
    x = g / (np.linalg.norm(g) + 1e-7)
    tall = g.shape[0] > g.shape[1]
    if tall:
        x = x.T
    for _ in range(5):
        a = x @ x.T
        x = A * x + (B * a + C * a @ a) @ x
    return x.T if tall else x


def rel(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b))


def main():
    rng = np.random.default_rng(1)
    for shape in [(64, 64), (40, 96), (96, 40), (33, 70), (200, 72), (512, 512), (2048, 512)]:
        g = rng.standard_normal(shape).astype(np.float32).astype(np.float64) * 3
        clean = ns_bf16(g)
        noisy = {n: max(rel(clean, ns_bf16(g, n, s)) for s in range(3)) for n in (1e-7, 1e-6)}
        print("%-12s bf16 vs fp64 %.2e   clean vs noisy products: 1e-7 %.2e, 1e-6 %.2e"
              % (shape, rel(ns_fp64(g), clean), noisy[1e-7], noisy[1e-6]))


if __name__ == "__main__":
    main()
