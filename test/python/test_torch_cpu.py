"""Tessera kernels as torch custom ops on the CPU (tessera.torch_op): float64 references,
torch.library.opcheck on every op, torch.compile(fullgraph=True) equal to eager, autograd
through linear attention eager and compiled, the same error eager and compiled."""
import functools
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tessera  # noqa: E402
from tessera import _runtime, linear as L  # noqa: E402
from tessera.reference import attention as softmax_reference, relative_error  # noqa: E402

TOL = 1e-5
D = 16
DOC = tessera.Buffer("document_id")
BIAS = tessera.Buffer("bias", dtype="float32", rank=2)
N_BIAS = 40  # relative positions -39 .. 39: lengths up to 40


def biased(score, b, h, q_idx, kv_idx):
    return score + BIAS[h, q_idx - kv_idx + N_BIAS - 1]


def alibi(score, b, h, q_idx, kv_idx):
    return score - (q_idx - kv_idx) * (h + 1) / 8


def same_document(b, h, q_idx, kv_idx):
    return DOC[q_idx] == DOC[kv_idx]


def nsa_like(q, k, v, gates):
    """Compressed-block selection, block-sparse attention and a gate: three kinds of op."""
    idx = tessera.block_topk(q, tessera.compress(k, block=16), block_q=1, block_k=16, k=2,
                             causal=True, include_current=True)
    sel, _ = tessera.attention(causal=True, block_sparse=(1, 16))(q, k, v, block_indices=idx)
    win, _ = tessera.attention(causal=True, window=5)(q, k, v)
    return tessera.gate(gates, sel, win)


SPECS = {
    "score_mod": lambda: tessera.attention(causal=True, score_mod=alibi),
    "bias": lambda: tessera.attention(causal=True, score_mod=biased),  # a learnable table
    "mask_mod": lambda: tessera.attention(mask_mod=same_document),
    "block_sparse": lambda: tessera.attention(causal=True, block_sparse=(16, 16)),
    "linear": lambda: tessera.linear_attention(decay=True, initial_state=True),
    "linear_elu": lambda: tessera.linear_attention(feature_map="elu_plus_one", scale=0.5),
    "decode": lambda: tessera.linear_decode(decay=True),
    "program": lambda: tessera.program(nsa_like, q="B H N D", k="B G N D", v="B G N D",
                                       gates=("B H N 2", "float32")),
}


@functools.lru_cache(maxsize=None)
def op(name):
    config = tessera.Config(block_m=16, block_n=16)
    kernel = tessera.compile(SPECS[name](), head_dim=D, config=config)
    return tessera.torch_op(kernel)


def randn(*shape, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale


def inputs(name, b=1, h=2, hk=1, n=37, seed=0, grad=False):
    """(positional args, keyword inputs) of a call to `name`'s op."""
    n = 1 if name == "decode" else n
    q, k, v = (randn(b, hh, n, D, seed=seed + i, scale=0.5) for i, hh in enumerate((h, hk, hk)))
    extra = {}
    if name == "mask_mod":
        extra["document_id"] = torch.tensor(np.repeat(np.arange(n), 5)[:n], dtype=torch.int32)
    if name == "block_sparse":
        blocks = -(-n // 16)
        lists = torch.full((b, 1, blocks, 2), -1, dtype=torch.int32)
        for i in range(blocks):
            lists[:, :, i, 0], lists[:, :, i, 1] = i, max(i - 2, -1)
        extra["block_indices"] = lists
    if name == "bias":
        extra["bias"] = randn(h, 2 * N_BIAS - 1, seed=seed + 7, scale=0.5)
    if name in ("linear", "decode"):
        extra["decay"] = torch.from_numpy(tessera.alibi_decay(h))
        key = "state" if name == "decode" else "initial_state"
        extra[key] = randn(b, h, D, D, seed=seed + 9, scale=0.1)
    if grad:  # float inputs that can have a gradient: q, k, v, a float32 table
        q, k, v = (x.requires_grad_() for x in (q, k, v))
        extra = {n: x.requires_grad_() if n == "bias" else x for n, x in extra.items()}
    if name == "program":
        return (q, k, v, torch.rand(b, h, n, 2, generator=torch.Generator().manual_seed(seed))), {}
    return (q, k, v), extra


def reference(name, args, extra):
    """float64 outputs of `name` (the program's from its CPU kernel called with numpy)."""
    a = [x.detach().numpy() for x in args]
    e = {n: x.numpy() for n, x in extra.items()}
    if name == "score_mod":
        return softmax_reference(*a, causal=True, score_mod=alibi)
    if name == "bias":
        table = e["bias"]
        return softmax_reference(*a, causal=True, score_mod=lambda s, b, h, i, j:
                                 s + table[h, i - j + N_BIAS - 1])
    if name == "mask_mod":
        doc = e["document_id"]
        return softmax_reference(*a, mask_mod=lambda b, h, i, j: doc[i] == doc[j])
    if name == "block_sparse":
        return softmax_reference(*a, causal=True, block_sparse=(16, 16),
                                 block_indices=e["block_indices"])
    if name in ("linear", "linear_elu"):
        spec = SPECS[name]()
        return L.reference(*a, causal=True, decay=e.get("decay"), feature_map=spec.feature_map,
                           scale=spec.scale, initial_state=e.get("initial_state"))
    if name == "decode":  # one step of the recurrence from `state`
        return L.reference(*a, causal=True, decay=e["decay"], initial_state=e["state"])
    return (op("program").kernel(*a),)


@pytest.mark.parametrize("n", [1, 37])
@pytest.mark.parametrize("name", list(SPECS))
def test_op_matches_float64(name, n):
    args, extra = inputs(name, n=n, h=2, hk=1 if name != "program" else 2)
    got = op(name)(*args, **extra)
    got = got if isinstance(got, tuple) else (got,)
    want = reference(name, args, extra)
    assert all(isinstance(x, torch.Tensor) for x in got)
    for g, w in zip(got, want):
        assert relative_error(g.numpy(), w) <= TOL, (name, relative_error(g.numpy(), w))


def test_ops_are_named_by_content():
    a, b = op("score_mod"), tessera.torch_op(tessera.compile(
        SPECS["score_mod"](), head_dim=D, config=tessera.Config(block_m=16, block_n=16)))
    assert a is b and str(a.forward.op).startswith("tessera.attention_")
    other = tessera.torch_op(tessera.compile(SPECS["score_mod"](), head_dim=D))
    assert other.name != a.name  # another config, another kernel


@pytest.mark.parametrize("name", list(SPECS))
def test_opcheck(name):
    kernel = op(name)
    differentiable = kernel.grad_op is not None  # softmax's once its backward exists
    args, extra = inputs(name, grad=differentiable)
    rest = [extra[n] for n in kernel.input_names if n in extra]
    results = {}
    for o in kernel.ops():
        if o is kernel.forward.op:
            call = list(args) + rest
        else:  # the gradient op: q, k, v, (o, lse of the forward,) grad_out, inputs
            plain, fixed = [x.detach() for x in args], [x.detach() for x in rest]
            saved = list(kernel.forward.op(*plain, *fixed)) if kernel.kind == "softmax" else []
            call = plain + saved + [randn(*args[0].shape[:3], D, seed=5)] + fixed
        results[str(o)] = torch.library.opcheck(o, tuple(call))
    print(name, results)
    assert results and all(r == "SUCCESS" for res in results.values() for r in res.values())
    assert len(results) == 1 + differentiable + (kernel.grad_tables_op is not None)
    assert differentiable or name in ("score_mod", "mask_mod", "block_sparse", "bias", "decode",
                                      "program")
    assert (kernel.tables_with_grad == ("bias",)) == (name == "bias" and differentiable)


class SmallModel(torch.nn.Module):
    """A softmax kernel with a score_mod beside Lightning Attention-2, between projections."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(D, D)
        self.softmax, self.linear = op("score_mod"), op("linear")
        self.register_buffer("decay", torch.from_numpy(tessera.alibi_decay(2)))

    def forward(self, q, k, v, state):
        o_soft = self.softmax(self.proj(q), k, v)
        o_lin, new_state = self.linear(q, k, v, decay=self.decay, initial_state=state)
        return o_soft + o_lin, new_state


def test_compile_fullgraph_equals_eager():
    torch.manual_seed(0)
    model = SmallModel()
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    q, k, v = (randn(1, 2, 45, D, seed=i, scale=0.5) for i in range(3))
    state = randn(1, 2, D, D, seed=4, scale=0.1)
    with torch.no_grad():
        eager = model(q, k, v, state)
        torch._dynamo.reset()
        traced = torch.compile(model, fullgraph=True, backend=record)(q, k, v, state)
        compiled = torch.compile(model, fullgraph=True)(q, k, v, state)  # Inductor
    calls = [str(n.target) for n in graphs[0].graph.nodes if n.op == "call_function"]
    print("fullgraph: one graph, calls", calls)
    assert len(graphs) == 1
    assert sum(c.startswith("tessera.") for c in calls) == 2
    for got in (traced, compiled):
        for g, e in zip(got, eager):
            assert torch.equal(g, e)
    ref = softmax_reference(model.proj(q).detach().numpy(), k.numpy(), v.numpy(), causal=True,
                            score_mod=alibi)[0]
    ref += L.reference(q.numpy(), k.numpy(), v.numpy(), causal=True, decay=model.decay.numpy(),
                       initial_state=state.numpy())[0]
    assert relative_error(eager[0].numpy(), ref) <= TOL


def test_compiled_model_backward_equals_eager():
    if op("score_mod").grad_op is None:
        pytest.skip("softmax kernels have no backward yet (issue 24)")
    torch.manual_seed(0)
    model = SmallModel()
    compiled = torch.compile(model, fullgraph=True)
    grads = []
    for fn in (model, compiled):
        model.zero_grad()
        q, k, v = (randn(1, 2, 45, D, seed=i, scale=0.5).requires_grad_() for i in range(3))
        o, _ = fn(q, k, v, randn(1, 2, D, D, seed=4, scale=0.1))
        (o * randn(1, 2, 45, D, seed=9)).sum().backward()
        grads.append([x.grad for x in (q, k, v)] + [p.grad for p in model.parameters()])
    for e, c in zip(*grads):
        assert relative_error(c.numpy(), e.numpy().astype(np.float64)) <= TOL


def linear_loss(fn, q, k, v, decay, weights):
    o, _ = fn(q, k, v, decay=decay)
    return (o * weights).sum()


@pytest.mark.parametrize("compiled", [False, True])
def test_linear_backward_matches_float64(compiled):
    kernel = tessera.torch_op(tessera.compile(tessera.linear_attention(decay=True), head_dim=D,
                                              config=tessera.Config(block_m=16)))
    q, k, v = (randn(1, 4, 33, D, seed=i, scale=0.5).requires_grad_() for i in range(3))
    k, v = (x.detach()[:, :2].clone().requires_grad_() for x in (k, v))  # GQA: 2 key heads
    decay = torch.from_numpy(tessera.alibi_decay(4))
    weights = randn(1, 4, 33, D, seed=7)
    loss_fn = torch.compile(linear_loss, fullgraph=True) if compiled else linear_loss
    loss_fn(kernel, q, k, v, decay, weights).backward()
    want = L.reference_grad(q.detach().numpy(), k.detach().numpy(), v.detach().numpy(),
                            weights.numpy(), decay=decay.numpy())
    for x, w in zip((q, k, v), want):
        assert relative_error(x.grad.numpy(), w) <= TOL


def softmax_alibi_float64(q, k, v):
    """Causal softmax attention with `alibi`, in float64 torch ops (autograd's reference)."""
    n = q.shape[2]
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    h = torch.arange(q.shape[1])[:, None, None]
    s = q @ k.transpose(-1, -2) / D ** 0.5 - (i - j) * (h + 1) / 8
    return torch.softmax(s.masked_fill(j > i, -float("inf")), -1) @ v


@pytest.mark.parametrize("compiled", [False, True])
def test_softmax_backward_matches_float64(compiled):
    if getattr(op("score_mod").kernel, "grad", None) is None:
        pytest.skip("softmax kernels have no backward yet (issue 24)")
    q, k, v = (randn(1, 2, 37, D, seed=i, scale=0.5).requires_grad_() for i in range(3))
    weights = randn(1, 2, 37, D, seed=8)
    fn = op("score_mod")
    if compiled:
        fn = torch.compile(fn, fullgraph=True)
    (fn(q, k, v) * weights).sum().backward()
    exact = [x.detach().double().requires_grad_() for x in (q, k, v)]
    (softmax_alibi_float64(*exact) * weights.double()).sum().backward()
    for x, w in zip((q, k, v), exact):
        assert relative_error(x.grad.numpy(), w.grad.numpy()) <= TOL


@pytest.mark.parametrize("compiled", [False, True])
def test_learnable_bias_table_gets_its_gradient(compiled):
    """A float32 table the score_mod reads (a relative-position bias) gets .grad like
    q, k and v, eager and compiled, against float64 autograd."""
    if op("bias").grad_tables_op is None:
        pytest.skip("softmax kernels have no table gradients here")
    n = 33
    (q, k, v), extra = inputs("bias", n=n, grad=True)
    bias, weights = extra["bias"], randn(1, 2, n, D, seed=8)
    fn = op("bias")
    if compiled:
        fn = torch.compile(fn, fullgraph=True)
    (fn(q, k, v, bias=bias) * weights).sum().backward()
    exact = [x.detach().double().requires_grad_() for x in (q, k, v, bias)]
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    s = exact[0] @ exact[1].transpose(-1, -2) / D ** 0.5 + exact[3][:, i - j + N_BIAS - 1]
    o = torch.softmax(s.masked_fill(j > i, -float("inf")), -1) @ exact[2]
    (o * weights.double()).sum().backward()
    for x, w in zip((q, k, v, bias), exact):
        assert relative_error(x.grad.numpy(), w.grad.numpy()) <= TOL


@pytest.mark.parametrize("compiled", [False, True])
def test_backward_without_a_gradient_kernel_names_what_is_missing(compiled):
    """Programs and decode steps have no gradient kernel (softmax had none before issue
    24): the forward works, eager and compiled, and the backward raises when it runs."""
    cases = [("program", "program 'nsa_like' has no backward"), ("decode", "decode step")]
    if op("score_mod").grad_op is None:
        cases.append(("score_mod", r"no backward yet.*grad\(q, k, v, o, lse"))
    for name, message in cases:
        args, extra = inputs(name, grad=True)
        fn = op(name)
        if compiled:
            torch._dynamo.reset()
            fn = torch.compile(lambda *a, fn=fn, **kw: fn(*a, **kw), fullgraph=True,
                               backend="aot_eager")
        out = fn(*args, **extra)
        out = out[0] if isinstance(out, tuple) else out
        with pytest.raises(NotImplementedError, match=message):
            out.sum().backward()


def bad_inputs():
    q, k, v = (randn(1, 2, 20, D, seed=i) for i in range(3))
    yield "float64", (q.double(), k.double(), v.double()), TypeError, "dtype float64"
    yield "bfloat16", (q.bfloat16(), k, v), TypeError, "q cannot be read as a host array"
    yield "head dim", (randn(1, 2, 20, 8), k, v), ValueError, "head dims must be 16"
    yield "rank", (q[0], k, v), ValueError, "rank 4"
    yield "heads", (randn(1, 3, 20, D), k, v), ValueError, "multiple of key/value heads"


@pytest.mark.parametrize("case", list(bad_inputs()), ids=lambda c: c[0])
def test_bad_input_raises_the_same_error_eager_and_compiled(case):
    _, args, error, message = case
    fn = op("score_mod")
    with pytest.raises(error, match=message) as eager:
        fn(*args)
    torch._dynamo.reset()
    with pytest.raises(error, match=message) as compiled:
        torch.compile(fn, fullgraph=True, backend="aot_eager")(*args)
    assert type(compiled.value) is type(eager.value)
    assert str(compiled.value) == str(eager.value)


def test_bad_table_and_decay_raise_the_same_error_eager_and_compiled():
    args, extra = inputs("mask_mod")
    bad_table = dict(extra, document_id=extra["document_id"].long())
    args_l, extra_l = inputs("linear")
    bad_decay = dict(extra_l, decay=extra_l["decay"] * 2)
    for fn, a, e, message in ((op("mask_mod"), args, bad_table, "document_id"),
                              (op("linear"), args_l, bad_decay, r"decay values must lie in")):
        with pytest.raises((TypeError, ValueError), match=message) as eager:
            fn(*a, **e)
        torch._dynamo.reset()
        with pytest.raises(type(eager.value), match=message):
            torch.compile(lambda *x, **y: fn(*x, **y), fullgraph=True, backend="aot_eager")(*a, **e)


def test_sparse_layout_is_named():  # torch.compile itself refuses sparse tensors
    q, k, v = (randn(1, 2, 20, D, seed=i) for i in range(3))
    with pytest.raises(TypeError, match="k cannot be read as a host array.*strided"):
        op("score_mod")(q, k.to_sparse(), v)


def test_non_contiguous_inputs_are_read_in_place():
    args, _ = inputs("score_mod", n=30)
    q = torch.randn(1, 30, 2, D).transpose(1, 2)  # [B, H, N, D] view of a [B, N, H, D] tensor
    got = op("score_mod")(q, *args[1:])
    want = softmax_reference(q.numpy(), args[1].numpy(), args[2].numpy(), causal=True,
                             score_mod=alibi)[0]
    assert not q.is_contiguous() and relative_error(got.numpy(), want) <= TOL


def test_gpu_kernel_ops_trace_with_fake_cuda_tensors():
    """GPU kernels' ops register without a GPU (PTX compiles here) and trace with fake CUDA
    tensors: every output's shape, dtype and device, block masks included."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.proxy_tensor import make_fx
    gpu = dict(head_dim=64, dtype="bfloat16", target="cuda")
    masked = tessera.torch_op(tessera.compile(tessera.attention(mask_mod=same_document), **gpu))
    linear = tessera.torch_op(tessera.compile(tessera.linear_attention(decay=True), **gpu))
    decode = tessera.torch_op(tessera.compile(tessera.linear_decode(decay=True), **gpu))
    assert len(masked.ops()) == 4 and len(linear.ops()) == 2 and len(decode.ops()) == 1

    def model(q, k, v, doc, decay, state):
        mask = masked.block_mask(q, k, v, document_id=doc)
        o = masked(q, k, v, block_mask=mask, document_id=doc)
        o_lin, s = linear(q, k, v, decay=decay)
        o_step, s_step = decode(q[:, :, :1], k[:, :, :1], v[:, :, :1], state=state, decay=decay)
        return o, o_lin, s, o_step, s_step

    with FakeTensorMode():
        q = torch.empty(2, 4, 300, 64, dtype=torch.bfloat16, device="cuda")
        doc = torch.empty(300, dtype=torch.int32, device="cuda")
        decay = torch.empty(4, device="cuda")
        state = torch.empty(2, 4, 64, 64, device="cuda")
        graph = make_fx(model)(q, q, q, doc, decay, state)
        outs = model(q, q, q, doc, decay, state)
    calls = [str(n.target) for n in graph.graph.nodes if n.op == "call_function"]
    assert sum(c.startswith("tessera.") for c in calls) == 4, calls
    assert [(tuple(o.shape), o.dtype, o.device.type) for o in outs] == [
        ((2, 4, 300, 64), torch.bfloat16, "cuda"), ((2, 4, 300, 64), torch.bfloat16, "cuda"),
        ((2, 4, 64, 64), torch.float32, "cuda"), ((2, 4, 1, 64), torch.bfloat16, "cuda"),
        ((2, 4, 64, 64), torch.float32, "cuda")]


def test_gpu_calls_check_once_per_layout_then_launch_planned():
    """_PlannedCalls (GPU ops' call path) with a stand-in kernel on host tensors: the
    kernel's own checked call on a new layout or a misaligned input, else the layout's
    launcher on fresh outputs."""
    from tessera.torch_ops import _PlannedCalls

    class Image:
        def __init__(self):
            self.launched, self.layouts = [], []

        def launcher(self, args):
            self.layouts.append([tuple(t.shape) for t in args])
            return lambda tensors: self.launched.append([tuple(t.shape) for t in tensors])

    class StandIn:
        spec, _image = tessera.attention(), Image()

    checked = []

    def checked_call(q, k, v):
        checked.append(q.shape)
        return torch.zeros(q.shape), torch.zeros(q.shape[:3])

    calls = _PlannedCalls(StandIn(), (), checked_call)
    q = torch.randn(1, 2, 8, D)
    calls([q, q, q])
    shapes = [(1, 2, 8, D)] * 4 + [(1, 2, 8)]
    assert len(checked) == 1 and StandIn._image.layouts == [shapes]
    out, lse = calls([q, q, q])
    assert len(checked) == 1 and StandIn._image.launched == [shapes]
    assert out.shape == (1, 2, 8, D) and lse.shape == (1, 2, 8)
    shifted = torch.randn(1 * 2 * 8 * D + 1)[1:].view(1, 2, 8, D)  # 4 bytes off alignment
    calls([shifted, q, q])
    calls([torch.randn(1, 2, 9, D)] * 3)  # a new layout
    assert len(checked) == 3 and len(StandIn._image.launched) == 1


def test_gpu_launcher_passes_what_launch_passes(monkeypatch):
    """An image's per-layout launcher gives the kernels the grids and parameters launch()
    gives them (host tensors and stand-in kernels: nothing runs)."""
    from tessera.launch import KernelImage
    launched = []

    class Kernel:
        def launch(self, grid, block, smem, stream, params):
            launched.append((grid, block, smem, list(params)))

    image = object.__new__(KernelImage)
    image.record = _runtime.LaunchRecord.parse(json.dumps({
        "version": _runtime.LAUNCH_RECORD_VERSION, "arguments": [4, 4],
        "workspaces": [{"dtype": "i32", "shape": [{"dim": [0, 0]}, {"dim": [0, 1]},
                                                  {"dim": [0, 2], "divide": [16]}]},
                       {"dtype": "f32", "shape": [{"dim": [2, 0]}, {"dim": [2, 1]},
                                                  {"dim": [2, 2]}, {"constant": 2}]}],
        "launches": [{"kernel": "classify", "block": 128, "smem": 0,
                      "grid": [{"dim": [0, 2], "divide": [16]}, {"dim": [0, 1]},
                               {"dim": [0, 0]}]},
                     {"kernel": "attend", "block": 256, "smem": 4096,
                      "grid": [{"dim": [0, 2], "divide": [64]}, {"dim": [0, 1]},
                               {"dim": [0, 0]}]}]}))
    image._describe()
    image._loaded = {0: (None, [Kernel(), Kernel()])}
    monkeypatch.setattr(torch._C, "_cuda_getCurrentRawStream", lambda index: 7, raising=False)
    args = [torch.randn(2, 3, 100, D), torch.randn(2, 3, 100, D).transpose(2, 3)]
    image.launch(args)
    image.launcher(args)(args)
    general, planned = launched[:2], launched[2:]
    assert [g[:3] for g in general] == [g[:3] for g in planned] == [
        ((7, 3, 2), (128, 1, 1), 0), ((2, 3, 2), (256, 1, 1), 4096)]
    pointers = {0, 1, 11, 12, 22, 23, 31, 32}  # each descriptor's two pointers
    for (_, _, _, a), (_, _, _, b) in zip(general, planned):
        assert len(a) == len(b) == 42
        assert [x for i, x in enumerate(a) if i not in pointers] == \
            [x for i, x in enumerate(b) if i not in pointers]
        assert a[:2] == b[:2] == [args[0].data_ptr()] * 2 and a[11] == b[11] == args[1].data_ptr()


def test_outputs_record_a_gradient_exactly_where_one_is_needed():
    args, extra = inputs("linear")
    kernel = op("linear")
    assert not kernel(*args, **extra)[0].requires_grad  # below autograd: nothing needs it
    q = args[0].clone().requires_grad_()
    with torch.no_grad():
        assert not kernel(q, *args[1:], **extra)[0].requires_grad
    o, state = kernel(q, *args[1:], **extra)
    assert o.requires_grad and not state.requires_grad  # the state has no gradient path
    decay = extra["decay"].clone().requires_grad_()
    o, _ = kernel(*args, **dict(extra, decay=decay))
    with pytest.raises(NotImplementedError, match=r"no gradient for \['decay'\]"):
        o.sum().backward()


CACHED_COMPILE = """
import torch, tessera
from torch._dynamo.utils import counters
def alibi(score, b, h, q_idx, kv_idx):
    return score - (q_idx - kv_idx) * (h + 1) / 8
attn = tessera.torch_op(tessera.compile(tessera.attention(causal=True, score_mod=alibi),
                                        head_dim=16))
torch.compile(lambda q: attn(q, q, q), fullgraph=True)(torch.randn(1, 2, 20, 16))
hits = counters["inductor"]["fxgraph_cache_hit"], counters["aot_autograd"]["autograd_cache_hit"]
print(attn.name, *hits)
"""


def test_compiled_graphs_are_reused_from_disk_by_another_process(tmp_path):
    """The reason for one op per kernel, named by content: a second process compiling the
    same spec names the same op, so Inductor's and AOTAutograd's on-disk caches hit."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", CACHED_COMPILE], env=env, check=True,
                           capture_output=True, text=True).stdout.split() for _ in range(2)]
    assert runs[0][0] == runs[1][0]  # the op's name
    assert runs[0][1:] == ["0", "0"] and runs[1][1:] == ["1", "1"], runs
