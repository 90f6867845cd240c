# PyTorch reference for `bench train`: MiniMind v1 (dense) forward + backward + AdamW at batch B, sequence T,
# as upstream's model.py computes it, reporting tokens/s and the process's peak RSS. An oracle for our notes,
# not part of the package (it needs python3 with torch; Debian's python3-torch is 1.13, which has no
# scaled_dot_product_attention, so MiniMind takes its explicit-scores branch there).
#   python3 bench/pytorch/train_step.py [--config minimind-v1-small] [--batch 8] [--seq 512] [--steps 3]
#       [--attention explicit|recompute]
# `recompute` saves only q, k, v and the output per layer and recomputes the scores in backward, which is what
# PyTorch 2.x's flash SDPA keeps: it bounds PyTorch 2.x's activation memory from below.
import argparse, json, math, resource, time
import torch
import torch.nn.functional as F

CONFIGS = {
    'minimind-v1-small': dict(dim=512, n_layers=8, n_heads=16, n_kv_heads=8),
    'minimind-v1': dict(dim=768, n_layers=16, n_heads=16, n_kv_heads=8),
}
VOCAB, THETA, EPS = 6400, 1e4, 1e-5


class RecomputeAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v):
        ctx.save_for_backward(q, k, v)
        return causal_attention(q, k, v)

    @staticmethod
    def backward(ctx, g):
        q, k, v = ctx.saved_tensors
        with torch.enable_grad():
            q2, k2, v2 = (t.detach().requires_grad_() for t in (q, k, v))
            out = causal_attention(q2, k2, v2)
        return torch.autograd.grad(out, (q2, k2, v2), g)


def causal_attention(q, k, v):  # (B, H, T, hd)
    T = q.shape[2]
    s = q @ k.transpose(2, 3) / math.sqrt(q.shape[-1])
    s = s + torch.full((T, T), float('-inf')).triu(1)
    return F.softmax(s.float(), dim=-1).type_as(q) @ v


class Block(torch.nn.Module):
    def __init__(self, dim, n_heads, n_kv_heads, attention):
        super().__init__()
        self.hd, self.nh, self.nkv = dim // n_heads, n_heads, n_kv_heads
        hidden = 64 * math.ceil(int(2 * 4 * dim / 3) / 64)
        self.wq = torch.nn.Linear(dim, n_heads * self.hd, bias=False)
        self.wk = torch.nn.Linear(dim, n_kv_heads * self.hd, bias=False)
        self.wv = torch.nn.Linear(dim, n_kv_heads * self.hd, bias=False)
        self.wo = torch.nn.Linear(n_heads * self.hd, dim, bias=False)
        self.w1 = torch.nn.Linear(dim, hidden, bias=False)
        self.w2 = torch.nn.Linear(hidden, dim, bias=False)
        self.w3 = torch.nn.Linear(dim, hidden, bias=False)
        self.n1 = torch.nn.Parameter(torch.ones(dim))
        self.n2 = torch.nn.Parameter(torch.ones(dim))
        self.attention = attention

    def forward(self, x, pos_cis):
        B, T, _ = x.shape
        h = rmsnorm(x, self.n1)
        q = rope(self.wq(h).view(B, T, self.nh, self.hd), pos_cis)
        k = rope(self.wk(h).view(B, T, self.nkv, self.hd), pos_cis)
        v = self.wv(h).view(B, T, self.nkv, self.hd)
        rep = self.nh // self.nkv
        k = k[:, :, :, None, :].expand(B, T, self.nkv, rep, self.hd).reshape(B, T, self.nh, self.hd)
        v = v[:, :, :, None, :].expand(B, T, self.nkv, rep, self.hd).reshape(B, T, self.nh, self.hd)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        o = RecomputeAttention.apply(q, k, v) if self.attention == 'recompute' else causal_attention(q, k, v)
        x = x + self.wo(o.transpose(1, 2).reshape(B, T, -1))
        h = rmsnorm(x, self.n2)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


def rmsnorm(x, w):
    return (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + EPS)).type_as(x) * w


def rope(x, pos_cis):
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * pos_cis[None, :, None, :]).flatten(3).type_as(x)


class Model(torch.nn.Module):
    def __init__(self, dim, n_layers, n_heads, n_kv_heads, attention, T):
        super().__init__()
        self.emb = torch.nn.Embedding(VOCAB, dim)
        self.layers = torch.nn.ModuleList(Block(dim, n_heads, n_kv_heads, attention) for _ in range(n_layers))
        self.norm = torch.nn.Parameter(torch.ones(dim))
        hd = dim // n_heads
        freqs = 1.0 / THETA ** (torch.arange(0, hd, 2)[: hd // 2].float() / hd)
        self.pos_cis = torch.polar(torch.ones(T, hd // 2), torch.outer(torch.arange(T).float(), freqs))

    def forward(self, tokens, targets):
        x = self.emb(tokens)
        for layer in self.layers:
            x = layer(x, self.pos_cis)
        logits = rmsnorm(x, self.norm) @ self.emb.weight.t()
        return F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1), ignore_index=0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--config', default='minimind-v1-small', choices=list(CONFIGS))
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--seq', type=int, default=512)
    p.add_argument('--steps', type=int, default=3)
    p.add_argument('--attention', default='explicit', choices=['explicit', 'recompute'])
    a = p.parse_args()
    torch.manual_seed(0)
    model = Model(**CONFIGS[a.config], attention=a.attention, T=a.seq)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(1, VOCAB, (a.batch, a.seq + 1))
    x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    times = []
    for step in range(a.steps + 1):  # the first step warms up
        t0 = time.perf_counter()
        loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    step_s = sorted(times[1:])[len(times[1:]) // 2]
    print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'config': a.config,
                      'attention': a.attention, 'tokens_per_s': a.batch * a.seq / step_s, 'step_s': step_s,
                      'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == '__main__':
    main()
