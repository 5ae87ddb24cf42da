"""Lightning Attention-2: causal linear attention with a per-head decay (ALiBi slopes),
then decode steps that continue from the prefill's final state."""
import time

import numpy as np

from _example import random_qkv, tessera

from tessera import linear
from tessera.reference import relative_error


def main():
    q, k, v = (x * 0.3 for x in random_qkv(B=1, H=8, N=2048, D=64))
    decay = tessera.alibi_decay(8)
    kernel = tessera.compile(tessera.linear_attention(decay=True), head_dim=64)
    kernel(q, k, v, decay=decay)  # warm-up
    start = time.perf_counter()
    out, state = kernel(q, k, v, decay=decay)
    seconds = time.perf_counter() - start

    # Three more tokens through the recurrent form, from the prefill's state.
    step = tessera.compile(tessera.linear_decode(decay=True), head_dim=64)
    more = [x[:, :, :3] * 0.5 for x in random_qkv(B=1, H=8, N=3, D=64, seed=1)]
    outs = []
    for t in range(3):
        o, state = step(*(x[:, :, t:t + 1].copy() for x in more), state=state, decay=decay)
        outs.append(o)

    full, _ = linear.reference(*(np.concatenate([x, y], axis=2) for x, y in zip((q, k, v), more)),
                               decay=decay)
    err = relative_error(np.concatenate([out, *outs], axis=2), full)
    print(f"{'lightning_attn2':<15} B=1 H=8  N=2048+3 D=64   relative error {err:.2e}  "
          f"{seconds * 1e3:7.1f} ms (prefill)")
    return err


if __name__ == "__main__":
    main()
