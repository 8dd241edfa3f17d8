#!/usr/bin/env python3
"""An independent PyTorch implementation of nanoseek's models, written from the equations, used to
check nanoseek's numerics and to time it against PyTorch on the same work.

    /usr/bin/python3 bench/torch_reference.py SPEC.json     (answers in JSON on stdout)

SPEC names a nanoseek checkpoint directory (config.json + model.safetensors, Hugging Face names) and a
batch file written by nanoseek (so both sides see identical tokens):

    "NSBT" · int32 LE steps, micro, B, T · per step, per micro-batch: ids[B·T], targets[B·T] (int32 LE)

mode "logits": float32 logits [B·T, V] of the first micro-batch are written to SPEC.logits_out (LE), followed
by the MTP module's when the model has one (its input tokens are the batch's targets).
mode "train": one optimizer step per step of the batch file; per-step losses come back.
mode "serve": the same steps one at a time, on request lines from stdin (see main).

Everything runs in SPEC.dtype ("float32" by default, or "float64" to compare against nanoseek's float64
tensors), except where nanoseek itself always works in float64 (router choice scores, the correction-bias
update, the gradient norm): there the reference does too, so that the two implementations round alike
wherever a rounding difference could flip a discrete routing decision.
"""
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def read_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        begin, end = info['data_offsets']
        buf = data[begin:end]
        shape = info['shape']
        dtype = info['dtype']
        if dtype == 'F32':
            arr = np.frombuffer(buf, dtype='<f4')
        elif dtype == 'BF16':
            arr = (np.frombuffer(buf, dtype='<u2').astype(np.uint32) << 16).view(np.float32)
        elif dtype == 'F16':
            arr = np.frombuffer(buf, dtype='<f2').astype(np.float32)
        else:
            raise ValueError(f'{path}: tensor {name} has dtype {dtype}; weights must be F32, F16 or BF16')
        out[name] = torch.from_numpy(arr.reshape(shape).copy()).to(torch.get_default_dtype())
    return out


def read_batches(path):
    with open(path, 'rb') as f:
        raw = f.read()
    if raw[:4] != b'NSBT':
        raise ValueError(f'{path}: not a nanoseek batch file')
    steps, micro, B, T = struct.unpack('<4i', raw[4:20])
    flat = np.frombuffer(raw, dtype='<i4', offset=20)
    if flat.size != steps * micro * 2 * B * T:
        raise ValueError(f'{path}: {flat.size} ids do not fill {steps}x{micro}x2x{B}x{T}')
    flat = flat.reshape(steps, micro, 2, B * T).astype(np.int64)
    return [[(torch.from_numpy(flat[s, m, 0].copy()), torch.from_numpy(flat[s, m, 1].copy())) for m in range(micro)]
            for s in range(steps)], B, T


# ------------------------------------------------------------------------------------------ RoPE

def yarn_mscale(factor, k):
    return 1.0 if factor <= 1 else 0.1 * k * math.log(factor) + 1.0


def inverse_frequencies(dim, theta, yarn):
    half = dim // 2
    freq = np.array([theta ** (-2.0 * i / dim) for i in range(half)], dtype=np.float64)
    if yarn is None or yarn['factor'] <= 1:
        return freq
    # YaRN: pair i keeps its frequency if it turns more than beta_fast times over the original
    # context, is divided by the factor if it turns fewer than beta_slow times, and is blended between.
    orig, base = yarn['original_max_position_embeddings'], theta

    def pair_index(turns):
        return dim * math.log(orig / (turns * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(pair_index(yarn.get('beta_fast', 32))), 0)
    high = min(math.ceil(pair_index(yarn.get('beta_slow', 1))), dim - 1)
    span = 0.001 if high == low else high - low
    ramp = np.clip((np.arange(half) - low) / span, 0.0, 1.0)
    return freq / yarn['factor'] * ramp + freq * (1 - ramp)


def rope_tables(T, dim, theta, yarn):
    inv = inverse_frequencies(dim, theta, yarn)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)
    if yarn is not None and yarn['factor'] > 1:
        m = yarn_mscale(yarn['factor'], yarn.get('mscale', 1)) / yarn_mscale(yarn['factor'], yarn.get('mscale_all_dim', 0))
        cos, sin = cos * m, sin * m
    dtype = torch.get_default_dtype()
    return torch.from_numpy(cos).to(dtype), torch.from_numpy(sin).to(dtype)


def rotate(x, cos, sin, interleaved):
    """x [B, T, H, d]; pair i turns by angle t·inv_freq[i]. Pairs are (2i, 2i+1) or (i, i + d/2)."""
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat((a * c - b * s, a * s + b * c), dim=-1)


# ------------------------------------------------------------------------------------------ model

def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def causal_attention(q, k, v, scale, mask):
    """q [B, T, H, dk], k [B, T, Hk, dk], v [B, T, Hk, dv] (Hk divides H) → [B, T, H·dv]."""
    B, T, H, _ = q.shape
    group = H // k.shape[2]
    if group > 1:
        k = k.repeat_interleave(group, dim=2)
        v = v.repeat_interleave(group, dim=2)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    probs = torch.softmax(scores.masked_fill(mask, float('-inf')), dim=-1)
    return torch.matmul(probs, v).transpose(1, 2).reshape(B, T, -1)


def stable_topk(x, k):
    """Indices of the k largest entries of each row, ties to the lower index."""
    return torch.sort(x, dim=-1, descending=True, stable=True).indices[..., :k]


class Reference:
    def __init__(self, cfg, tensors):
        self.cfg = cfg
        self.ds = cfg['model_type'] == 'deepseek_v3'
        self.eps = cfg['rms_norm_eps']
        self.L = cfg['num_hidden_layers']
        self.mtp = self.ds and cfg.get('num_nextn_predict_layers', 0) > 0
        self.yarn = cfg.get('rope_scaling')
        if self.yarn is not None and self.yarn.get('rope_type', self.yarn.get('type')) != 'yarn':
            raise ValueError('only YaRN rope scaling is implemented here')
        if self.ds:
            self.rope_dim = cfg['qk_rope_head_dim']
            self.scale = 1 / math.sqrt(cfg['qk_nope_head_dim'] + cfg['qk_rope_head_dim'])
            if self.yarn is not None and self.yarn.get('mscale_all_dim', 0):
                self.scale *= yarn_mscale(self.yarn['factor'], self.yarn['mscale_all_dim']) ** 2
            self.interleaved = cfg.get('rope_interleave', True)
        else:
            self.head_dim = cfg.get('head_dim') or cfg['hidden_size'] // cfg['num_attention_heads']
            self.rope_dim = self.head_dim
            self.scale = 1 / math.sqrt(self.head_dim)
            self.interleaved = False
        # The MTP module's embedding is the main one (the checkpoint repeats it under its own name).
        skip = {f'model.layers.{self.L}.embed_tokens.weight'}
        self.p = {}
        self.buffers = {}
        for name, t in tensors.items():
            if name in skip:
                continue
            if name.endswith('e_score_correction_bias'):
                self.buffers[name] = t
            else:
                self.p[name] = t.requires_grad_(True)
        self.lm_head = self.p['model.embed_tokens.weight'] if cfg.get('tie_word_embeddings') else self.p['lm_head.weight']
        self.moe_layers = [i for i in range(self.L + (1 if self.mtp else 0)) if self.ds and i >= cfg['first_k_dense_replace']]
        # Tokens per expert over the current step, for the bias update. As in nanoseek's trainStep only the
        # main model's routers are updated; the MTP module's correction bias keeps its loaded value.
        self.load = {i: torch.zeros(cfg['n_routed_experts'], dtype=torch.float64) for i in self.moe_layers}
        self.record_load = False
        self.tables = {}

    def optim_params(self):
        """(name, tensor, weight decay?): matrices decay, except the embedding; norms and biases don't."""
        return [(n, t, t.dim() == 2 and n != 'model.embed_tokens.weight') for n, t in self.p.items()]

    def table(self, T):
        if T not in self.tables:
            self.tables[T] = rope_tables(T, self.rope_dim, self.cfg['rope_theta'], self.yarn)
        return self.tables[T]

    # -- attention

    def mla(self, pre, x, cos, sin, mask):
        c = self.cfg
        B, T, _ = x.shape
        H, dn, dr, dv, r = c['num_attention_heads'], c['qk_nope_head_dim'], c['qk_rope_head_dim'], c['v_head_dim'], c['kv_lora_rank']
        p = self.p
        if c.get('q_lora_rank') is None:
            q = x @ p[pre + 'q_proj.weight'].t()
        else:
            q = rms_norm(x @ p[pre + 'q_a_proj.weight'].t(), p[pre + 'q_a_layernorm.weight'], self.eps) @ p[pre + 'q_b_proj.weight'].t()
        q = q.view(B, T, H, dn + dr)
        q = torch.cat((q[..., :dn], rotate(q[..., dn:], cos, sin, self.interleaved)), dim=-1)
        kv = x @ p[pre + 'kv_a_proj_with_mqa.weight'].t()
        latent = rms_norm(kv[..., :r], p[pre + 'kv_a_layernorm.weight'], self.eps)
        k_pe = rotate(kv[..., r:].view(B, T, 1, dr), cos, sin, self.interleaved)
        kv = (latent @ p[pre + 'kv_b_proj.weight'].t()).view(B, T, H, dn + dv)
        k = torch.cat((kv[..., :dn], k_pe.expand(B, T, H, dr)), dim=-1)
        o = causal_attention(q, k, kv[..., dn:], self.scale, mask)
        return o @ p[pre + 'o_proj.weight'].t()

    def gqa(self, pre, x, cos, sin, mask):
        c = self.cfg
        B, T, _ = x.shape
        H, Hk, hd = c['num_attention_heads'], c['num_key_value_heads'], self.head_dim
        p = self.p

        def proj(name, heads):
            y = x @ p[pre + name + '.weight'].t()
            if pre + name + '.bias' in p:
                y = y + p[pre + name + '.bias']
            return y.view(B, T, heads, hd)

        q = rotate(proj('q_proj', H), cos, sin, False)
        k = rotate(proj('k_proj', Hk), cos, sin, False)
        o = causal_attention(q, k, proj('v_proj', Hk), self.scale, mask)
        return o @ p[pre + 'o_proj.weight'].t()

    # -- feed-forward

    def swiglu(self, pre, x):
        p = self.p
        return (F.silu(x @ p[pre + 'gate_proj.weight'].t()) * (x @ p[pre + 'up_proj.weight'].t())) @ p[pre + 'down_proj.weight'].t()

    def moe(self, layer, pre, x, B, T, alpha):
        """x [N, D] → ([N, D], balance loss or None)."""
        c = self.cfg
        N = x.shape[0]
        E, K = c['n_routed_experts'], c['num_experts_per_tok']
        logits = x @ self.p[pre + 'gate.weight'].t()
        scores = torch.sigmoid(logits) if c['scoring_func'] == 'sigmoid' else torch.softmax(logits, dim=-1)
        bias = self.buffers.get(pre + 'gate.e_score_correction_bias')
        with torch.no_grad():
            # Experts are chosen on score + bias; the bias never enters the weights.
            choice = scores.detach().double()
            if bias is not None:
                choice = choice + bias.double()
            G, keep = c['n_group'], c['topk_group']
            if c['topk_method'] != 'greedy' and 1 < G and keep < G:
                per = E // G
                grouped = choice.view(N, G, per)
                best = 2 if bias is not None and per >= 2 else 1
                group_score = torch.sort(grouped, dim=-1, descending=True, stable=True).values[..., :best].sum(-1)
                kept = torch.zeros(N, G, dtype=torch.bool).scatter_(1, stable_topk(group_score, keep), True)
                choice = choice.masked_fill(~kept.repeat_interleave(per, dim=1), float('-inf'))
            idx = stable_topk(choice, K)
        weights = scores.gather(1, idx)
        if c['norm_topk_prob'] and K > 1:
            weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
        weights = weights * c['routed_scaling_factor']

        flat = idx.reshape(-1)
        order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=E)
        if self.record_load and layer in self.load:
            self.load[layer] += counts.double()
        token_of = order // K
        routed = x.index_select(0, token_of)
        outs, at = [], 0
        for e, n in enumerate(counts.tolist()):
            if n == 0:
                continue  # an expert with no tokens takes no part (its gradient stays absent)
            outs.append(self.swiglu(f'{pre}experts.{e}.', routed[at:at + n]))
            at += n
        y = torch.cat(outs) * weights.reshape(-1).index_select(0, order)[:, None]
        out = torch.zeros_like(x).index_add(0, token_of, y)
        if c['n_shared_experts'] > 0:
            out = out + self.swiglu(pre + 'shared_experts.', x)

        balance = None
        if alpha > 0:
            # Sequence-wise: f_i = E/(K·T)·(tokens of the sequence choosing i), P_i = mean over the
            # sequence of the scores normalised per token; α·Σ f_i·P_i averaged over sequences.
            seq = torch.arange(N) // T
            hits = torch.zeros(B, E, dtype=torch.float64)
            hits.index_put_((seq.repeat_interleave(K), flat), torch.ones(N * K, dtype=torch.float64), accumulate=True)
            f = (hits * (E / (K * T))).to(scores.dtype)
            norm = scores if c['scoring_func'] == 'softmax' else scores / (scores.sum(-1, keepdim=True) + 1e-20)
            P = norm.view(B, T, E).mean(1)
            balance = (P * f).sum() * (alpha / B)
        return out, balance

    # -- blocks

    def block(self, i, x, cos, sin, mask, alpha):
        B, T, D = x.shape
        pre = f'model.layers.{i}.'
        h_in = rms_norm(x, self.p[pre + 'input_layernorm.weight'], self.eps)
        h = x + (self.mla if self.ds else self.gqa)(pre + 'self_attn.', h_in, cos, sin, mask)
        normed = rms_norm(h, self.p[pre + 'post_attention_layernorm.weight'], self.eps).reshape(B * T, D)
        if i in self.moe_layers:
            y, bal = self.moe(i, pre + 'mlp.', normed, B, T, alpha)
        else:
            y, bal = self.swiglu(pre + 'mlp.', normed), None
        return h + y.view(B, T, D), bal

    def forward(self, ids, B, T, mtp_targets=None, alpha=0.0):
        D = self.cfg['hidden_size']
        cos, sin = self.table(T)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        embed = self.p['model.embed_tokens.weight']
        x = embed[ids].view(B, T, D)
        balance = []
        for i in range(self.L):
            x, bal = self.block(i, x, cos, sin, mask, alpha)
            if bal is not None:
                balance.append(bal)
        logits = rms_norm(x, self.p['model.norm.weight'], self.eps).reshape(B * T, D) @ self.lm_head.t()
        mtp_logits = None
        if mtp_targets is not None:
            # Depth-1 MTP: position t combines h_t with the embedding of token t+1 and predicts t+2.
            pre = f'model.layers.{self.L}.'
            nxt = embed[mtp_targets.clamp(min=0)].view(B, T, D)
            h = torch.cat((rms_norm(nxt, self.p[pre + 'enorm.weight'], self.eps), rms_norm(x, self.p[pre + 'hnorm.weight'], self.eps)), dim=-1)
            h = h @ self.p[pre + 'eh_proj.weight'].t()
            h, bal = self.block(self.L, h, cos, sin, mask, alpha)
            if bal is not None:
                balance.append(bal)
            mtp_logits = rms_norm(h, self.p[pre + 'shared_head.norm.weight'], self.eps).reshape(B * T, D) @ self.p[pre + 'shared_head.head.weight'].t()
        return logits, mtp_logits, (sum(balance[1:], balance[0]) if balance else None)

    def loss(self, ids, targets, B, T, mtp_weight, alpha):
        use_mtp = self.mtp and mtp_weight > 0
        logits, mtp_logits, balance = self.forward(ids, B, T, targets if use_mtp else None, alpha)
        ce = mean_ce(logits, targets)
        total = ce
        mtp_ce = None
        if mtp_logits is not None:
            shifted = torch.full_like(targets, IGNORE_INDEX).view(B, T)
            shifted[:, :-1] = targets.view(B, T)[:, 1:]
            mtp_ce = mean_ce(mtp_logits, shifted.reshape(-1))
            total = total + mtp_ce * mtp_weight
        if balance is not None:
            total = total + balance
        return total, ce, mtp_ce, balance

    def update_bias(self, gamma):
        """b_i += γ·sign(mean load − load_i) over the tokens of the step, for every MoE layer (the MTP block's too)."""
        for i, load in self.load.items():
            total = load.sum().item()
            bias = self.buffers.get(f'model.layers.{i}.mlp.gate.e_score_correction_bias')
            if bias is not None and total > 0:
                bias.copy_(bias.double() + gamma * torch.sign(total / load.numel() - load))
            load.zero_()


def mean_ce(logits, targets):
    if (targets != IGNORE_INDEX).sum().item() == 0:
        return logits.sum() * 0
    return F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)


# ------------------------------------------------------------------------------------------ training

class AdamW:
    """Decoupled weight decay p ← p·(1 − lr·wd) − lr·m̂/(√v̂ + eps); gradients first scaled by
    min(1, clip/‖g‖) with ‖g‖ the global norm. A parameter no token reached (an unused expert) has a
    zero gradient, not none: its moments still decay and weight decay still applies, as in nanoseek."""

    def __init__(self, params, cfg):
        self.params = params
        self.cfg = cfg
        self.m = [torch.zeros_like(t) for _, t, _ in params]
        self.v = [torch.zeros_like(t) for _, t, _ in params]
        self.step = 0

    def zero_grad(self):
        for _, t, _ in self.params:
            if t.grad is not None:
                t.grad.zero_()

    @torch.no_grad()
    def update(self, lr):
        c = self.cfg
        for _, t, _ in self.params:
            if t.grad is None:
                t.grad = torch.zeros_like(t)
        norm = math.sqrt(sum(t.grad.double().pow(2).sum().item() for _, t, _ in self.params))
        if not math.isfinite(norm):
            raise RuntimeError(f'gradient norm is {norm}')
        scale = c['grad_clip'] / norm if c['grad_clip'] > 0 and norm > c['grad_clip'] else 1.0
        self.step += 1
        b1, b2 = c['beta1'], c['beta2']
        step_size = lr / (1 - b1 ** self.step)
        inv_bc2 = 1 / (1 - b2 ** self.step)
        for (_, p, decay), m, v in zip(self.params, self.m, self.v):
            g = p.grad * scale
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            if decay:
                p.mul_(1 - lr * c['weight_decay'])
            p.addcdiv_(m, (v * inv_bc2).sqrt_().add_(c['eps']), value=-step_size)
        return norm


def cosine_lr(step, s):
    """Linear warmup to the peak, then cosine decay to min_ratio·peak at step `total`."""
    peak, warmup, total, min_ratio = s['peak'], s['warmup'], s['total'], s.get('min_ratio', 0.1)
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


class Trainer:
    """nanoseek's trainStep: gradients accumulated over the micro-batches (each weighted by its share of the
    step's target tokens),
    one AdamW update at the schedule's learning rate, then the router bias update."""

    def __init__(self, ref, batches, B, T, spec):
        self.ref, self.batches, self.B, self.T, self.spec = ref, batches, B, T, spec
        self.opt = AdamW(ref.optim_params(), spec['optimizer'])
        self.mtp_w, self.alpha = spec.get('mtp_weight', 0), spec.get('balance_alpha', 0)
        self.done = 0

    def step(self):
        micro = self.batches[self.done]
        t0 = time.perf_counter()
        self.opt.zero_grad()
        self.ref.record_load = True
        tot = ce = mtp = bal = 0.0
        has_mtp = has_bal = False
        counts = [int((targets != IGNORE_INDEX).sum().item()) for _, targets in micro]
        for (ids, targets), count in zip(micro, counts):
            w = count / sum(counts)
            if w == 0:
                continue
            loss, c, m, b = self.ref.loss(ids, targets, self.B, self.T, self.mtp_w, self.alpha)
            (loss * w).backward()
            tot += loss.item() * w
            ce += c.item() * w
            if m is not None:
                has_mtp, mtp = True, mtp + m.item() * w
            if b is not None:
                has_bal, bal = True, bal + b.item() * w
        self.ref.record_load = False
        lr = cosine_lr(self.done, self.spec['schedule'])
        norm = self.opt.update(lr)
        self.ref.update_bias(self.spec.get('bias_update_speed', 0))
        self.done += 1
        return {'loss': tot, 'ce': ce, 'mtp_ce': mtp if has_mtp else None, 'balance': bal if has_bal else None,
                'grad_norm': norm, 'lr': lr, 'seconds': time.perf_counter() - t0}

    def time_passes(self, repeats):
        """Seconds per forward (no autograd) and per forward+backward on the first batch, at the current weights."""
        ids, targets = self.batches[0][0]
        args = (ids, targets, self.B, self.T, self.mtp_w, self.alpha)
        with torch.no_grad():
            self.ref.loss(*args)
            t0 = time.perf_counter()
            for _ in range(repeats):
                self.ref.loss(*args)
            fwd = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(repeats):
            self.ref.loss(*args)[0].backward()
        fwd_bwd = time.perf_counter() - t0
        self.opt.zero_grad()
        return {'forward_seconds': fwd / repeats, 'forward_backward_seconds': fwd_bwd / repeats}


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    torch.set_num_threads(spec.get('threads', 1))
    torch.set_default_dtype({'float32': torch.float32, 'float64': torch.float64}[spec.get('dtype', 'float32')])
    with open(spec['model'] + '/config.json') as f:
        cfg = json.load(f)
    ref = Reference(cfg, read_safetensors(spec['model'] + '/model.safetensors'))
    batches, B, T = read_batches(spec['batches'])
    out = {'torch': torch.__version__, 'threads': torch.get_num_threads()}
    mode = spec['mode']
    if mode == 'logits':
        ids, targets = batches[0][0]
        with torch.no_grad():
            logits, mtp_logits, _ = ref.forward(ids, B, T, targets if ref.mtp else None)
        with open(spec['logits_out'], 'wb') as f:
            for t in (logits, mtp_logits) if mtp_logits is not None else (logits,):
                f.write(t.numpy().astype('<f4').tobytes())
    elif mode == 'train':
        trainer = Trainer(ref, batches, B, T, spec)
        out['steps'] = [trainer.step() for _ in batches]
    elif mode == 'serve':
        # One JSON line per request line, so a benchmark can alternate our steps with these and both
        # sides see the same machine load: {"cmd": "step"} or {"cmd": "passes", "repeats": n}.
        trainer = Trainer(ref, batches, B, T, spec)
        print(json.dumps(out), flush=True)
        for line in sys.stdin:
            req = json.loads(line)
            if req['cmd'] == 'step':
                reply = trainer.step()
            elif req['cmd'] == 'passes':
                reply = trainer.time_passes(req['repeats'])
            else:
                raise ValueError(f"unknown request {req['cmd']!r}")
            print(json.dumps(reply), flush=True)
        return
    else:
        raise ValueError(f"mode must be 'logits', 'train' or 'serve', got {mode!r}")
    json.dump(out, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
