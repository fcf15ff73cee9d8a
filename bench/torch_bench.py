"""The PyTorch side of the GPU benchmarks in BENCHMARKS.md ("CUDA backend on an H200").

Runs in the same session as the Java side (dev.k2pekko.bench.GpuBench); see bench/gpu-run.sh.
PyTorch is the reference to beat, not a dependency of the project.

  python3 bench/torch_bench.py [ns,step,compile,optim]

ns:      Newton-Schulz 5 in bf16 (the reference Muon iteration), on the same shapes as the Java side; then at
         every Muon shape of the two step models: one matrix, the model's matrices of that shape one by one, and
         the same stacked into one batched iteration (3-D matmuls, each matrix normalised by its own norm).
optim:   the whole optimizer step of the two step models on fixed random gradients: torch.optim.Muon on the
         hidden matrices (W_q, W_k, W_v, W_o, W_1, W_2 of every layer; lr 1e-3, wd 0.1, momentum 0.95, Nesterov,
         the 0.2*sqrt(max(A,B)) scale of adjust_lr_fn="match_rms_adamw", as the Java side) plus fused AdamW on the
         rest; the reference loop below when torch.optim.Muon is absent.
step:    one training step (forward, backward, fused AdamW) of the same GPT as dev.k2pekko.model.PolicyModel:
         pre-norm RMSNorm, learned positions, causal attention (SDPA), GELU (tanh) MLP 4x, no biases, untied
         head, final RMSNorm; bf16 autocast over fp32 master weights, eager.
compile: the same step with the model under torch.compile.
Each figure line starts with RESULT and is one JSON object; times are medians of CUDA-event timings.
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

A, B, C = 3.4445, -4.7750, 2.0315


def result(d):
    print("RESULT " + json.dumps(d), flush=True)


def event_ms(fn, reps, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


def ns5(g, steps=5, eps=1e-7):
    x = g.bfloat16()
    x = x / (x.norm() + eps)
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        a = x @ x.T
        b = B * a + C * a @ a
        x = A * x + b @ x
    return x.T if tall else x


def ns5_batched(g, steps=5, eps=1e-7):
    # ns5 on a stack (n, r, c) of same-shaped matrices, each normalised by its own norm
    x = g.bfloat16()
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + eps)
    tall = g.size(-2) > g.size(-1)
    if tall:
        x = x.mT
    for _ in range(steps):
        a = x @ x.mT
        b = B * a + C * a @ a
        x = A * x + b @ x
    return x.mT if tall else x


def ns_flops(r, c):
    r, c = min(r, c), max(r, c)
    return 5 * (4 * r * r * c + 2 * r ** 3)


def bench_ns():
    shapes = [(1024, 1024), (4096, 4096), (8192, 8192), (512, 512), (2048, 512), (512, 2048), (4096, 1024), (1024, 4096)]
    torch.manual_seed(3)
    for r, c in shapes:
        g = torch.randn(r, c, device="cuda")
        reps = 10 if r * c >= 4096 * 4096 else 30
        ms = event_ms(lambda: ns5(g), reps)
        result({"bench": "ns5", "side": "torch", "rows": r, "cols": c, "ms": round(ms, 4),
                "tflops": round(ns_flops(r, c) / ms / 1e9, 1)})


MODELS = [(512, 8, 32), (1024, 12, 16)]  # d, layers, batch of the step part (T=1024, V=8192)


def muon_shapes(d, layers):
    # the hidden matrices' shapes with their counts, in the Java side's order: W_q, W_k, W_v, W_o (d, d); W_1 (4d, d); W_2 (d, 4d)
    return [((d, d), 4 * layers), ((4 * d, d), layers), ((d, 4 * d), layers)]


def bench_ns_models():
    torch.manual_seed(5)
    for d, layers, _ in MODELS:
        one_total = batch_total = 0.0
        for (r, c), count in muon_shapes(d, layers):
            gs = [torch.randn(r, c, device="cuda") for _ in range(count)]
            single = event_ms(lambda: ns5(gs[0]), 20)
            one = event_ms(lambda: [ns5(g) for g in gs], 20)
            batched = event_ms(lambda: ns5_batched(torch.stack(gs)), 20)
            out = ns5_batched(torch.stack(gs)).float()
            diff = 0.0
            for i, g in enumerate(gs):
                ref = ns5(g).float()
                diff = max(diff, ((out[i] - ref).norm() / ref.norm()).item())
            del out
            result({"bench": "ns5_model", "side": "torch", "d": d, "layers": layers, "rows": r, "cols": c, "count": count,
                    "single_ms": round(single, 4), "one_by_one_ms": round(one, 4), "batched_ms": round(batched, 4),
                    "per_matrix_one_by_one_ms": round(one / count, 4), "per_matrix_batched_ms": round(batched / count, 4),
                    "batched_tflops": round(ns_flops(r, c) * count / batched / 1e9, 1), "speedup": round(one / batched, 2),
                    "batched_vs_one_rel_diff_max": float("%.2e" % diff)})
            one_total += one
            batch_total += batched
            del gs
        result({"bench": "ns5_model_total", "side": "torch", "d": d, "layers": layers,
                "matrices": sum(n for _, n in muon_shapes(d, layers)), "one_by_one_ms": round(one_total, 4),
                "batched_ms": round(batch_total, 4), "speedup": round(one_total / batch_total, 2)})
    torch.cuda.empty_cache()


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.RMSNorm(d, eps=1e-5)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.norm2 = nn.RMSNorm(d, eps=1e-5)
        self.w1 = nn.Linear(d, 4 * d, bias=False)
        self.w2 = nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        h = self.norm1(x)
        q = self.wq(h).view(b, t, self.heads, -1).transpose(1, 2)
        k = self.wk(h).view(b, t, self.heads, -1).transpose(1, 2)
        v = self.wv(h).view(b, t, self.heads, -1).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.wo(a.transpose(1, 2).reshape(b, t, d))
        return x + self.w2(F.gelu(self.w1(self.norm2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, d, layers, heads, context):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context, d)
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.norm = nn.RMSNorm(d, eps=1e-5)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        t = ids.size(1)
        x = self.tok(ids) + self.pos(torch.arange(t, device=ids.device))
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x))


def bench_step(d, layers, batch, compiled, seq=1024, vocab=8192):
    torch.manual_seed(1)
    model = GPT(vocab, d, layers, d // 64, seq).cuda()
    fwd = torch.compile(model) if compiled else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, fused=True)
    ids = torch.randint(0, vocab, (batch, seq), device="cuda")
    tgt = torch.randint(0, vocab, (batch, seq), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = fwd(ids)
        loss = F.cross_entropy(logits.float().view(-1, vocab), tgt.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    t0 = time.time()
    step()  # compiles when compiled
    warm_s = time.time() - t0
    ms = event_ms(step, 10, warm=3)
    params = sum(p.numel() for p in model.parameters())
    result({"bench": "step", "side": "torch", "mode": "compile" if compiled else "eager", "d": d, "layers": layers,
            "batch": batch, "seq": seq, "params": params, "ms_median": round(ms, 2),
            "tokens_per_s": round(batch * seq / (ms / 1e3)), "first_step_s": round(warm_s, 1)})
    del model, opt, fwd
    torch.cuda.empty_cache()


def reference_muon(hidden, lr, wd, mu):
    # Muon as the Java side computes it (Muon.java): M = mu M + G, U = G + mu M, W = (1 - lr wd) W - lr 0.2 sqrt(max(A, B)) NS5(U)
    bufs = [torch.zeros_like(p) for p in hidden]

    @torch.no_grad()
    def step():
        for p, buf in zip(hidden, bufs):
            buf.mul_(mu).add_(p.grad)
            u = p.grad + mu * buf
            o = ns5(u).to(p.dtype)
            p.mul_(1 - lr * wd)
            p.add_(o, alpha=-lr * 0.2 * max(p.shape) ** 0.5)

    return step


def bench_optim(d, layers, seq=1024, vocab=8192):
    torch.manual_seed(1)
    model = GPT(vocab, d, layers, d // 64, seq).cuda()
    hidden = [w.weight for blk in model.blocks for w in (blk.wq, blk.wk, blk.wv, blk.wo, blk.w1, blk.w2)]
    hidden_ids = {id(p) for p in hidden}
    rest = [p for p in model.parameters() if id(p) not in hidden_ids]
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    lr, wd, mu = 1e-3, 0.1, 0.95
    adamw = torch.optim.AdamW(rest, lr=lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=wd, fused=True)
    muon_cls = getattr(torch.optim, "Muon", None)
    if muon_cls is None:
        print("torch.optim.Muon is absent in torch %s: timing the reference Muon loop instead" % torch.__version__, flush=True)
        muon_step, kind = reference_muon(hidden, lr, wd, mu), "reference loop (ns5 per matrix)"
    else:
        try:
            muon = muon_cls(hidden, lr=lr, weight_decay=wd, momentum=mu, nesterov=True, adjust_lr_fn="match_rms_adamw")
            kind = "torch.optim.Muon adjust_lr_fn=match_rms_adamw"
        except (TypeError, ValueError) as e:
            print("torch.optim.Muon refused adjust_lr_fn=match_rms_adamw (%s): its default lr adjustment instead" % e, flush=True)
            muon = muon_cls(hidden, lr=lr, weight_decay=wd, momentum=mu, nesterov=True)
            kind = "torch.optim.Muon default adjust_lr_fn"
        muon_step = muon.step

    def step():
        muon_step()
        adamw.step()

    ms = event_ms(step, 10, warm=3)
    result({"bench": "optim_step", "side": "torch", "d": d, "layers": layers,
            "params": sum(p.numel() for p in model.parameters()), "muon_matrices": len(hidden),
            "optimizer": "muon+adamw", "muon": kind, "adamw": "fused", "ms": round(ms, 2)})
    del model, adamw
    torch.cuda.empty_cache()


def main():
    parts = set((sys.argv[1] if len(sys.argv) > 1 else "ns,step,compile").split(","))
    print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(), flush=True)
    if "ns" in parts:
        bench_ns()
        bench_ns_models()
    if "optim" in parts:
        for d, layers, _ in MODELS:
            bench_optim(d, layers)
    for d, layers, batch in MODELS:
        if "step" in parts:
            bench_step(d, layers, batch, False)
        if "compile" in parts:
            bench_step(d, layers, batch, True)


if __name__ == "__main__":
    main()
