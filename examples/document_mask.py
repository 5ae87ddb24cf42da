"""Document masking: packed sequences attend causally within their own document.

The document ids are a run-time table, so one kernel serves every packing."""
import numpy as np

from _example import random_qkv, run, tessera

doc = tessera.Buffer("document_id")


def main():
    spec = tessera.attention(causal=True,
                             mask_mod=lambda b, h, q_idx, kv_idx: doc[q_idx] == doc[kv_idx])
    kernel = tessera.compile(spec, head_dim=64)

    N = 512
    lengths = [100, 37, 250, 125]                      # four documents packed into N
    ids = np.repeat(np.arange(len(lengths)), lengths).astype(np.int32)
    q, k, v = random_qkv(B=1, H=4, N=N, D=64)
    same_doc = lambda b, h, i, j: ids[i] == ids[j]     # the numpy form, for the reference
    return run("document_mask", kernel, q, k, v, dict(causal=True, mask_mod=same_doc),
               document_id=ids)


if __name__ == "__main__":
    main()
