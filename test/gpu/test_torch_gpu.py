"""Tessera kernels as torch custom ops on the GPU (tessera.torch_op): compiled equal to
eager, autograd compiled, a decode loop captured in a CUDA graph, no host synchronisation
per call, opcheck on every op, the same error eager and compiled. Skipped without a GPU."""
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))
import tessera  # noqa: E402
from gpu_reference import reference, rel  # noqa: E402
from tessera.linear import check_decay  # noqa: E402

D, TOL = 64, 4e-3  # bf16 in, fp32 accumulation (SEMANTICS.md: peers 2.0-2.7e-3)
DOC = tessera.Buffer("document_id")
_OPS = {}


def alibi(score, b, h, q_idx, kv_idx):
    return score - (q_idx - kv_idx) / 8


SPECS = {
    "score_mod": lambda: tessera.attention(causal=True, score_mod=alibi),
    "mask_mod": lambda: tessera.attention(mask_mod=lambda b, h, i, j: DOC[i] == DOC[j]),
    "linear": lambda: tessera.linear_attention(decay=True),
    "decode": lambda: tessera.linear_decode(decay=True),
}


def op(name):
    if name not in _OPS:
        config = None if name in ("linear", "decode") else tessera.Config()
        _OPS[name] = tessera.torch_op(tessera.compile(SPECS[name](), head_dim=D, dtype="bfloat16",
                                                      target="cuda", config=config))
    return _OPS[name]


def randn(*shape, seed=0, scale=1.0, dtype=torch.bfloat16):
    g = torch.Generator(device="cuda").manual_seed(seed)
    return (torch.randn(*shape, generator=g, device="cuda") * scale).to(dtype)


def qkv(b=1, h=4, n=300, seed=0, grad=False):
    xs = [randn(b, h, n, D, seed=seed + i, scale=0.5) for i in range(3)]
    return [x.requires_grad_() for x in xs] if grad else xs


def decay(h=4):
    return torch.from_numpy(tessera.alibi_decay(h)).cuda()


@pytest.mark.parametrize("n", [1, 300])
def test_softmax_op_matches_float64(n):
    q, k, v = qkv(n=n)
    got = op("score_mod")(q, k, v)
    want = reference(q, k, v, causal=True, score_mod=lambda s, *_: s - (
        torch.arange(n)[:, None] - torch.arange(n)[None, :]).numpy() / 8)
    assert rel(got, want) <= TOL


class SmallModel(torch.nn.Module):
    """Both kernels and an add: bit-equal compiled (a projection before them could round
    differently under Inductor than cuBLAS's addmm eager; test_torch_cpu has one)."""

    def __init__(self):
        super().__init__()
        self.softmax, self.linear = op("score_mod"), op("linear")
        self.register_buffer("decay", decay())

    def forward(self, q, k, v):
        o_lin, state = self.linear(q, k, v, decay=self.decay)
        return self.softmax(q, k, v) + o_lin, state


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compile_fullgraph_equals_eager(mode):
    torch.manual_seed(0)
    model = SmallModel()
    q, k, v = qkv(n=257)
    with torch.no_grad():
        eager = model(q, k, v)
        compiled = torch.compile(model, fullgraph=True, mode=mode)
        for _ in range(3):  # reduce-overhead records a CUDA graph on a later call
            got = compiled(q, k, v)
    for g, e in zip(got, eager):
        assert torch.equal(g, e)


def test_compiled_linear_backward_equals_eager():
    grads = []
    for compiled in (False, True):
        q, k, v = qkv(n=333, grad=True)
        fn = op("linear")
        if compiled:
            fn = torch.compile(fn, fullgraph=True)
        o, _ = fn(q, k, v, decay=decay())
        (o.float() * randn(1, 4, 333, D, seed=9, dtype=torch.float32)).sum().backward()
        grads.append([x.grad for x in (q, k, v)])
    for e, c in zip(*grads):
        assert rel(c, e.double()) <= 1e-2  # the same kernels; bf16 rounding of grad_out


def test_softmax_backward_compiled_equals_eager_once_it_exists():
    if op("score_mod").grad_op is None:
        pytest.skip("the GPU softmax kernel has no grad() yet")
    grads = []
    for compiled in (False, True):
        q, k, v = qkv(n=200, grad=True)
        fn = torch.compile(op("score_mod"), fullgraph=True) if compiled else op("score_mod")
        fn(q, k, v).float().sum().backward()
        grads.append([x.grad for x in (q, k, v)])
    for e, c in zip(*grads):
        assert rel(c, e.double()) <= 1e-2


def test_decode_loop_captured_in_a_cuda_graph_replays_eager():
    step, steps, h = op("decode"), 12, 4
    lam = decay(h)
    tokens = [qkv(h=h, n=1, seed=10 * t) for t in range(steps)]
    state0 = randn(1, h, D, D, seed=99, scale=0.1, dtype=torch.float32)
    eager_out, state = [], state0.clone()
    for q, k, v in tokens:
        o, state = step(q, k, v, state=state, decay=lam)
        eager_out.append(o)
    # Static buffers the graph reads and writes; the state is carried in place.
    q_in, k_in, v_in = (torch.empty_like(x) for x in tokens[0])
    state_buf = state0.clone()
    check_decay(lam)  # the one check that waits for the GPU, before capture
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as torch's recipe does
        step(q_in, k_in, v_in, state=state_buf.clone(), decay=lam)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        o_graph, new_state = step(q_in, k_in, v_in, state=state_buf, decay=lam)
        state_buf.copy_(new_state)
    state_buf.copy_(state0)
    for t, (q, k, v) in enumerate(tokens):
        q_in.copy_(q), k_in.copy_(k), v_in.copy_(v)
        graph.replay()
        assert torch.equal(o_graph, eager_out[t]), f"step {t}"
    assert torch.equal(state_buf, state)


def test_capture_refuses_an_unchecked_decay():
    q, k, v = qkv(n=1)
    lam = decay() * 0.5  # a tensor no call has checked
    state = torch.zeros(1, 4, D, D, device="cuda")
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(ValueError, match="not checked before this CUDA graph capture"):
        with torch.cuda.graph(graph):
            op("decode")(q, k, v, state=state, decay=lam)


def test_calls_do_not_synchronise():
    q, k, v = qkv(n=200)
    lam, state = decay(), torch.zeros(1, 4, D, D, device="cuda")
    step = [x[:, :, :1].contiguous() for x in (q, k, v)]
    calls = [lambda: op("score_mod")(q, k, v), lambda: op("linear")(q, k, v, decay=lam),
             lambda: op("decode")(*step, state=state, decay=lam)]
    for call in calls:
        call()  # first calls: module loads, the decay check
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for call in calls:
            call()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_block_mask_op_is_reused():
    q, k, v = qkv(n=300)
    doc = (torch.arange(300, device="cuda") // 70).to(torch.int32)
    mask_op = op("mask_mod")
    mask = mask_op.block_mask(q, k, v, document_id=doc)
    fresh = mask_op(q, k, v, document_id=doc)
    reused = mask_op(q, k, v, block_mask=mask, document_id=doc)
    compiled = torch.compile(lambda *a, **kw: mask_op(*a, **kw), fullgraph=True)(
        q, k, v, block_mask=mask, document_id=doc)
    assert torch.equal(fresh, reused) and torch.equal(fresh, compiled)
    want = reference(q, k, v, mask_mod=lambda i, j: doc[i] == doc[j])
    assert rel(fresh, want) <= TOL
    with pytest.raises(ValueError, match="block_mask was made for other shapes"):
        mask_op(*qkv(n=100), block_mask=mask, document_id=doc[:100])


def test_opcheck():
    q, k, v = qkv(n=70)
    doc = (torch.arange(70, device="cuda") // 20).to(torch.int32)
    mask_op = op("mask_mod")
    cases = [(op("score_mod").forward.op, (q, k, v)),
             (mask_op.forward.op, (q, k, v, doc)),
             (mask_op.mask_op, (q, k, v, doc)),
             (mask_op.masked_op, (q, k, v, mask_op.block_mask(q, k, v, document_id=doc), doc)),
             (op("linear").forward.op, (*qkv(n=70, grad=True), decay())),
             (op("linear").grad_op.op, (q, k, v, randn(1, 4, 70, D, seed=3), decay())),
             (op("decode").forward.op, (*qkv(n=1), torch.zeros(1, 4, D, D, device="cuda"),
                                        decay()))]
    halves = tessera.program(lambda q, k1, v1, k2, v2: tessera.merge(
        *tessera.attention()(q, k1, v1), *tessera.attention()(q, k2, v2)),
        q="B H N D", k1="B H M D", v1="B H M D", k2="B H M D", v2="B H M D")
    program = tessera.torch_op(tessera.compile(halves, head_dim=D, dtype="bfloat16",
                                               target="cuda"))
    cases.append((program.forward.op, (q, k, v, *qkv(n=70, seed=5)[1:])))
    for o, args in cases:
        result = torch.library.opcheck(o, args)
        print(o, result)
        assert all(r == "SUCCESS" for r in result.values()), (o, result)


def bad_inputs():
    q, k, v = qkv(n=50)
    yield "host tensor", (q.cpu(), k, v), ValueError, "q is on cpu"
    yield "float32", (q.float(), k, v), TypeError, "q has dtype torch.float32"
    yield "layout", (q.transpose(2, 3).contiguous().transpose(2, 3), k, v), ValueError, \
        "contiguous in its last dimension"
    yield "head dim", (q[..., :32], k, v), ValueError, "rows must start|head dims"


def test_cpu_kernel_given_cuda_tensors_says_so_eager_and_compiled():
    cpu_op = tessera.torch_op(tessera.compile(tessera.attention(causal=True), head_dim=D))
    q, k, v = (x.float() for x in qkv(n=20))
    with pytest.raises(ValueError, match="compiled for the CPU") as eager:
        cpu_op(q, k, v)
    with pytest.raises(ValueError, match="compiled for the CPU") as compiled:
        torch.compile(cpu_op, fullgraph=True)(q, k, v)
    assert str(compiled.value) == str(eager.value)


@pytest.mark.parametrize("case", list(bad_inputs()), ids=lambda c: c[0])
def test_bad_input_raises_the_same_error_eager_and_compiled(case):
    _, args, error, message = case
    fn = op("score_mod")
    with pytest.raises(error, match=message) as eager:
        fn(*args)
    torch._dynamo.reset()
    with pytest.raises(error, match=message) as compiled:
        torch.compile(fn, fullgraph=True)(*args)
    assert str(compiled.value) == str(eager.value)
