"""Measures how fast the SMs can read data that sits in L2 (a 24 MiB buffer, read over
and over by a Triton kernel), the ceiling for kernels that gather the same keys from L2
many times (NSA's selected blocks): python3 bench/l2_bandwidth.py"""
import torch
import triton
import triton.language as tl


@triton.jit
def _read(x_ptr, out_ptr, n, BLOCK: tl.constexpr, REPEAT: tl.constexpr):
    pid = tl.program_id(0)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for r in range(REPEAT):  # each program re-reads its slice; the slices cover the buffer
        offs = ((pid + r * tl.num_programs(0)) * BLOCK + tl.arange(0, BLOCK)) % n
        acc += tl.load(x_ptr + offs).to(tl.float32)
    tl.store(out_ptr + pid * BLOCK + tl.arange(0, BLOCK), acc)


def main():
    from triton.testing import do_bench
    elements = 12 * 2**20  # bf16: 24 MiB, well inside the H200's 50 MiB L2
    x = torch.randn(elements, device="cuda", dtype=torch.bfloat16)
    best = 0.0
    for block in (2048, 4096, 8192):
        for per_sm in (8, 16, 32):
            programs, repeat = 132 * per_sm, 64
            out = torch.empty(programs * block, device="cuda")
            ms = do_bench(lambda: _read[(programs,)](x, out, elements, BLOCK=block,
                                                     REPEAT=repeat))
            rate = programs * block * repeat * 2 / ms / 1e9
            print(f"block {block}, {per_sm} programs per SM: {rate:.2f} TB/s")
            best = max(best, rate)
    print(f"L2 -> SM read, best: {best:.2f} TB/s ({torch.cuda.get_device_name()})")
    ms = do_bench(lambda: x.sum())
    print(f"torch sum of the buffer: {elements * 2 / ms / 1e9:.2f} TB/s")


if __name__ == "__main__":
    main()
