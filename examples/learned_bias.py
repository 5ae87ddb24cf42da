"""A learnable relative-position bias, fitted by gradient descent through kernel.grad.

The score_mod adds bias[h, q_idx - kv_idx + N - 1] (a float32 table) to each score; the
compiler differentiates it, so kernel.grad returns the table's gradient beside dq, dk, dv.
A student table starting at zero is fitted (Adam, numpy) so that the kernel's output
matches a teacher's whose bias decays with distance; the loss falls step by step. The
first step's table gradient is checked against the float64 reference."""
import numpy as np

from _example import random_qkv, tessera
from tessera import reference
from tessera.reference_grad import attention_grad

H, N, D = 2, 64, 32
BIAS = tessera.Buffer("bias", dtype="float32", rank=2)


def biased(score, b, h, q_idx, kv_idx):
    return score + BIAS[h, q_idx - kv_idx + N - 1]


def table_gradient_error(kernel, q, k, v, table, target):
    """Relative error of the kernel's dbias against float64 sums of the reference's dS'."""
    o, lse = kernel(q, k, v, return_lse=True, bias=table)
    dout = (o - target) / o.size
    dbias = kernel.grad(q, k, v, o, lse, dout, grad_tables=("bias",), bias=table)[3]
    ref = np.zeros(table.shape)
    i, j = np.arange(N)[:, None], np.arange(N)[None, :]

    def collect(b, h, ds_modified):
        np.add.at(ref, (np.full_like(i - j, h), i - j + N - 1), ds_modified)

    attention_grad(q, k, v, dout, causal=True, on_score_grad=collect,
                   score_mod=lambda s, b, h, i, j: s + table[h, i - j + N - 1],
                   score_mod_grad=lambda s, b, h, i, j: np.ones_like(s))
    return reference.relative_error(dbias, ref)


def main(steps=60, lr=0.1):
    kernel = tessera.compile(tessera.attention(causal=True, score_mod=biased), head_dim=D)
    q, k, v = random_qkv(B=2, H=H, N=N, D=D, seed=1)
    distance = np.arange(N - 1, -N, -1)  # entry e holds q_idx - kv_idx = e - (N - 1)
    teacher = np.stack([-0.3 * (h + 1) * np.abs(distance) ** 0.5 for h in range(H)]).astype(np.float32)
    target = kernel(q, k, v, bias=teacher)

    table = np.zeros_like(teacher)
    error = table_gradient_error(kernel, q, k, v, table, target)
    m, s = np.zeros_like(table), np.zeros_like(table)
    for step in range(1, steps + 1):
        o, lse = kernel(q, k, v, return_lse=True, bias=table)
        loss = 0.5 * float(np.sum((o - target) ** 2)) / o.size
        dbias = kernel.grad(q, k, v, o, lse, (o - target) / o.size, grad_tables=("bias",),
                            bias=table)[3]
        m = 0.9 * m + 0.1 * dbias                      # Adam
        s = 0.999 * s + 0.001 * dbias ** 2
        table -= lr * (m / (1 - 0.9 ** step)) / (np.sqrt(s / (1 - 0.999 ** step)) + 1e-8)
        if step == 1 or step % 10 == 0:
            print(f"learned_bias    step {step:>3}  loss {loss:.3e}")
    print(f"learned_bias    table gradient rel. err {error:.1e} vs float64")
    return error


if __name__ == "__main__":
    main()
