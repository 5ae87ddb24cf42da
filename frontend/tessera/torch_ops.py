"""Compiled kernels as torch custom ops: torch.compile traces them with no graph break,
autograd differentiates them, CUDA graphs capture them.

    kernel = tessera.compile(spec, head_dim=64)           # any kernel kind, CPU or GPU
    attn = tessera.torch_op(kernel)
    out = attn(q, k, v)                                   # torch tensors, eager or compiled

Each kernel is an op of its own, `tessera::<spec name>_<hash>`, the hash taken over what
defines the kernel (its attn module, config, dtype, dims, target). Why not one op taking a
kernel handle: a handle would be an int or string argument meaningful only in this
process, so a graph cached on disk (Inductor's FX graph cache, AOTAutograd's cache) could
replay with a handle naming another kernel, and the op's fake implementation could not
know the output dims without a registry lookup per trace either way. A content-named op
is the same op in every process that compiles the same spec, so cached graphs stay valid,
and its schema lists exactly the kernel's inputs (opcheck checks them).

Arguments are checked where the kernel runs (the op's implementation, with the kernel's
own checks), not in the fake implementation: a bad input then raises the same exception,
type and text, eager and compiled. The fake implementation only gives output shapes.
"""
from __future__ import annotations

import hashlib
import sys

from .checks import check_decay, check_names, torch_module
from .linear import LinearAttentionSpec
from .program import ProgramSpec, _check_inputs, _given, dim_value
from .softmax_grad import check_grad_tables
from .spec import AttentionSpec
from .trace import SpecError

_LIBRARY = None
_OPS = {}  # op name -> TorchKernel
_TORCH = None


def _torch():
    """torch, imported on first use (a call of an op pays a global lookup, not an import)."""
    global _TORCH
    if _TORCH is None:
        _TORCH = torch_module()
    return _TORCH


def _library():
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = _torch().library.Library("tessera", "FRAGMENT")
    return _LIBRARY


def op_name(kernel) -> str:
    """`<spec name>_<hash of what defines the kernel>`: the same in every process."""
    config = getattr(kernel, "config", None)
    parts = [type(kernel).__name__, kernel.module, kernel.dtype, str(kernel.head_dim),
             str(kernel.value_dim), getattr(kernel, "chip", "cpu"),
             repr(sorted(config.as_kwargs().items())) if config else "",
             str(getattr(kernel, "split_follows_shape", False))]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return f"{kernel.spec.name}_{digest}"


def _as_torch(x):
    """A CPU kernel's numpy result as a torch tensor sharing its memory."""
    torch = _torch()
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(x)


def _plain(tensors):
    """The inputs without autograd's flag (an op's implementation runs below autograd, but
    numpy refuses tensors that require gradients, and GPU linear attention would record a
    gradient function of its own)."""
    return [t.detach() if t.requires_grad else t for t in tensors]


def _new(x, shape, dtype=None):
    return x.new_empty(tuple(shape), dtype=dtype or x.dtype)


class _Op:
    """One registered op: schema, implementation, fake implementation."""

    def __init__(self, name: str, inputs, outputs: int, impl, fake) -> None:
        torch = _torch()
        lib = _library()
        result = "Tensor" if outputs == 1 else "(" + ", ".join(["Tensor"] * outputs) + ")"
        lib.define(f"{name}({', '.join('Tensor ' + n for n in inputs)}) -> {result}")
        lib.impl(name, impl, "CompositeExplicitAutograd")
        torch.library.register_fake(f"tessera::{name}", fake, lib=lib)
        self.name, self.inputs = name, tuple(inputs)
        self.op = getattr(torch.ops.tessera, name).default


def _missing_backward(message: str):
    """A backward for a kernel without a gradient kernel. It fails when it runs (eager, or
    a compiled graph's backward), through an op that raises, not when torch.compile traces
    it: a compiled model whose forward is used stays usable."""
    def backward(ctx, *grads):
        inputs = ctx.saved_tensors
        floats = [x for x in inputs if x.is_floating_point()]
        # The upstream gradient is an input so that the op stays in the backward graph.
        upstream = next(g for g in grads if g is not None)
        made = iter(_missing_gradient_op()(floats, upstream, message))
        return tuple(next(made) if x.is_floating_point() else None for x in inputs)

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    return backward, setup_context


def _missing_gradient_op():
    """tessera::missing_gradient(inputs, upstream, message): raises
    NotImplementedError(message) when run; its fake gives gradients shaped like the inputs."""
    torch = _torch()
    if not hasattr(torch.ops.tessera, "missing_gradient"):
        def impl(inputs, upstream, message):
            raise NotImplementedError(message)

        lib = _library()
        lib.define("missing_gradient(Tensor[] inputs, Tensor upstream, str message) -> Tensor[]")
        lib.impl("missing_gradient", impl, "CompositeExplicitAutograd")
        def fake(inputs, upstream, message):
            return [torch.empty_like(x) for x in inputs]

        torch.library.register_fake("tessera::missing_gradient", fake, lib=lib)
    return torch.ops.tessera.missing_gradient.default


def _differentiable_tables(spec) -> tuple:
    """The tables of a softmax spec that kernel.grad differentiates (float32, read by the
    score_mod), as its own check of grad_tables= decides."""
    tables = []
    for name in spec.buffers:
        try:
            check_grad_tables(spec, (name,))
        except SpecError:
            continue
        tables.append(name)
    return tuple(tables)


def layout(tensors) -> tuple:
    """What a kernel's checks of these tensors depend on but their data pointers:
    shapes, strides, dtypes, devices."""
    return tuple([(t.shape, t.stride(), t.dtype, t.get_device()) for t in tensors])


class _PlannedCalls:
    """A GPU kernel's calls through its op, for little host work per call: the first call
    with a layout (the shape, strides, dtype and device of every input) runs the kernel's
    own checks; later calls with that layout check only what a layout does not fix (each
    input's 16-byte alignment, decay values once per tensor version), allocate the outputs
    from torch's caching allocator and launch through the launcher made on that first
    call (grids, workspace shapes, parameters but for the data pointers)."""

    def __init__(self, kernel, extra, checked_call) -> None:
        self.kernel, self.checked_call, self.plans = kernel, checked_call, {}
        self.decay = 3 + extra.index("decay") if "decay" in extra else None
        # Inputs whose rows the kernel reads with 16-byte loads (tables and block lists
        # are read by element).
        self.aligned = 3 if isinstance(kernel.spec, AttentionSpec) else 3 + len(extra)

    def __call__(self, inputs):
        # (List comprehensions and loops: a generator costs a µs more per call here.)
        key = layout(inputs)
        plan = self.plans.get(key)
        misaligned = False
        for t in inputs[:self.aligned]:
            misaligned |= t.data_ptr() % 16 != 0
        if plan is None or misaligned:
            outs = self.checked_call(*inputs)  # the kernel's checks, and its errors
            if plan is None:
                self.plans[key] = self._plan(inputs, outs)
            return outs
        launch, outputs = plan
        if self.decay is not None:
            check_decay(inputs[self.decay])
        empty, device = _TORCH.empty, inputs[0].device
        outs = tuple([empty(shape, dtype=dtype, device=device) for shape, dtype in outputs])
        launch([*inputs, *outs])
        return outs

    def _plan(self, inputs, outs):
        """(the image's launcher for this layout, the outputs' shapes and dtypes)."""
        kernel = self.kernel
        if hasattr(kernel, "_shaped"):  # linear attention: the split follows the shape
            kernel = kernel._shaped(inputs[0])
        if len(self.plans) > 1024:  # layouts that keep changing: do not grow forever
            self.plans.clear()
        return (kernel._image.launcher([*inputs, *outs]),
                [(tuple(o.shape), o.dtype) for o in outs])


def _call(op, args):
    """op(*args), below autograd where nothing needs a gradient: torch's Python autograd
    wrapper of a registered op costs ~7 µs a call (half the op's dispatch), spent only
    where it records something. Inside torch.compile the op is traced as it is."""
    torch = _TORCH
    if torch.compiler.is_compiling():
        return op(*args)
    if torch.is_grad_enabled():
        for t in args:
            if getattr(t, "requires_grad", False):
                return op(*args)
    with torch._C._AutoDispatchBelowAutograd():
        return op(*args)


class TorchKernel:
    """A compiled kernel called through its torch ops (see the module docstring). Calls
    take what the kernel takes, as torch tensors, and return torch tensors."""

    def __init__(self, kernel) -> None:
        self.kernel, self.name = kernel, op_name(kernel)
        spec = kernel.spec
        if isinstance(spec, AttentionSpec):
            self.kind = "softmax"
            self.input_names = (("block_indices",) if spec.block_sparse else ()) + spec.buffers
        elif isinstance(spec, LinearAttentionSpec):
            self.kind = "decode" if spec.decode else "linear"
            self.input_names = spec.extra_inputs
        elif isinstance(spec, ProgramSpec):
            self.kind = "program"
            self.input_names = tuple(d.name for d in spec.inputs)
        else:
            raise TypeError(f"torch_op takes a compiled Tessera kernel, got "
                            f"{type(kernel).__name__}")
        self.grad_op = self.grad_tables_op = self.mask_op = self.masked_op = None
        self.tables_with_grad = ()
        self.forward_calls = None  # a GPU kernel's _PlannedCalls
        getattr(self, "_register_" + ("program" if self.kind == "program" else "attention"))()

    # ------------------------------------------------------------------ registration

    def _register_attention(self):
        kernel, extra = self.kernel, self.input_names
        names = ["q", "k", "v"] + ["in_" + n for n in extra]
        softmax = self.kind == "softmax"

        def checked_call(q, k, v, *rest):
            given = dict(zip(extra, rest))
            if softmax:
                return tuple(_as_torch(x) for x in kernel(q, k, v, return_lse=True, **given))
            return tuple(_as_torch(x) for x in kernel(q, k, v, **given))

        if hasattr(kernel, "_image"):  # a GPU kernel: planned launches after the first call
            planned = self.forward_calls = _PlannedCalls(kernel, extra, checked_call)

            def impl(*args):
                return planned(_plain(args))
        else:
            def impl(*args):
                return checked_call(*_plain(args))

        def fake(q, k, v, *rest):
            lead = tuple(q.shape[:3])  # lse [B, H, N], or the state [B, H, D, Dv]
            second = lead if softmax else lead[:2] + (kernel.head_dim, kernel.value_dim)
            return _new(q, lead + (kernel.value_dim,)), _new(q, second, _torch().float32)

        self.forward = _Op(self.name, names, 2, impl, fake)
        grad = getattr(kernel, "grad", None)
        if grad is not None and self.kind != "decode":
            self.grad_op = self._register_grad(names)
            self.tables_with_grad = _differentiable_tables(kernel.spec) if softmax else ()
            if self.tables_with_grad:
                self.grad_tables_op = self._register_grad(names, self.tables_with_grad)
        self._register_autograd(self.forward.name)
        if softmax and getattr(kernel, "_classifies", lambda: False)():  # GPU mask_mod
            self._register_block_mask(names, fake)

    def _register_grad(self, names, tables=()):
        """(dq, dk, dv) from the kernel's gradient: linear attention's grad(q, k, v,
        grad_out, **inputs); softmax's grad(q, k, v, o, lse, grad_out, **tables), and
        with `tables` (float32 tables the score_mod reads) their gradients after them."""
        kernel, extra, softmax = self.kernel, self.input_names, self.kind == "softmax"
        saved = ["o", "lse"] if softmax else []
        grad_names = names[:3] + saved + ["grad_out"] + names[3:]
        wanted = {"grad_tables": tables} if tables else {}

        def impl(*args):
            q, k, v, *rest = _plain(args)
            head, tail = rest[:len(saved) + 1], rest[len(saved) + 1:]
            grads = kernel.grad(q, k, v, *head, **wanted, **dict(zip(extra, tail)))
            return tuple(_as_torch(x) for x in grads)

        def fake(q, k, v, *rest):
            given = dict(zip(extra, rest[len(saved) + 1:]))
            return tuple(_new(x, x.shape) for x in (q, k, v, *(given[n] for n in tables)))

        suffix = "_grad_tables" if tables else "_grad"
        return _Op(self.name + suffix, grad_names, 3 + len(tables), impl, fake)

    def _register_autograd(self, op: str, lists: int = 0):
        """Autograd of tessera::`op` (q, k, v, then `lists` tensor lists with no gradient,
        e.g. a block mask, then the kernel's other inputs)."""
        torch = _torch()
        spec_name, softmax = self.kernel.spec.name, self.kind == "softmax"
        if self.kind == "decode":
            backward, setup_context = _missing_backward(
                f"tessera kernel {spec_name!r} is a decode step: it has no gradient kernel; "
                f"differentiate the prefill")
        elif self.grad_op is None:
            backward, setup_context = _missing_backward(
                f"tessera kernel {spec_name!r} ({self.kind}) has no backward yet: "
                f"{type(self.kernel).__name__}.grad(q, k, v, o, lse, grad_out, **tables) is "
                f"missing (the softmax backward, issue 24)")
        else:
            extra, with_grad = self.input_names, self.tables_with_grad

            def backward(ctx, grad_out, _grad_second):
                wanted = [n for n, w in zip(extra, ctx.needs_input_grad[3 + lists:]) if w]
                if any(n not in with_grad for n in wanted):
                    raise NotImplementedError(
                        f"tessera kernel {spec_name!r}: no gradient for {wanted}; the "
                        f"differentiable inputs are {['q', 'k', 'v', *with_grad]}")
                q, k, v, *rest = ctx.saved_tensors
                saved = rest[:2] if softmax else []
                tables = rest[2:] if softmax else rest
                g = grad_out.to(q.dtype).contiguous()
                if not wanted:
                    dq, dk, dv = self.grad_op.op(q, k, v, *saved, g, *tables)
                    made = ()
                else:
                    dq, dk, dv, *made = self.grad_tables_op.op(q, k, v, *saved, g, *tables)
                by_name = dict(zip(with_grad, made))
                # A tensor list's gradient is a list of Nones as long as it (torch checks).
                return ((dq, dk, dv) + tuple([None] * n for n in ctx.list_lengths)
                        + tuple(by_name.get(n) for n in extra))

            def setup_context(ctx, inputs, output):
                # The second output (lse, or the final state) has no gradient path.
                ctx.mark_non_differentiable(output[1])
                ctx.list_lengths = [len(x) for x in inputs[3:3 + lists]]
                ctx.save_for_backward(*inputs[:3], *(output if softmax else ()),
                                      *inputs[3 + lists:])

        torch.library.register_autograd(f"tessera::{op}", backward,
                                        setup_context=setup_context, lib=_library())

    def _register_block_mask(self, names, fake):
        """A GPU mask_mod kernel's tile classification as an op of its own (its outputs are
        the workspaces), and attention reusing it (FlexAttention's block_mask)."""
        kernel, extra = self.kernel, self.input_names

        def shapes(q, k, v, *rest):
            lead = tuple(q.shape[:3])
            return [tuple(t.shape) for t in (q, k, v, *rest)] + [lead + (kernel.value_dim,), lead]

        def mask_impl(*args):
            q, k, v, *rest = _plain(args)
            return kernel.block_mask(q, k, v, **dict(zip(extra, rest))).workspaces

        def mask_fake(q, k, v, *rest):
            planned, _ = kernel._image.plan(shapes(q, k, v, *rest), cache=False)  # symbolic
            return [_new(q, s, d) for s, d in zip(planned, kernel._image.workspace_dtypes())]

        def masked_impl(q, k, v, mask, *rest):
            q, k, v, *rest = _plain([q, k, v, *rest])
            planned, _ = kernel._image.plan(tuple(shapes(q, k, v, *rest)))
            if [tuple(m.shape) for m in mask] != [tuple(s) for s in planned]:
                raise ValueError("block_mask was made for other shapes than these q, k, v")
            tiles = kernel.tile_mask((tuple(q.shape), tuple(k.shape)), list(mask))
            return kernel(q, k, v, return_lse=True, block_mask=tiles, **dict(zip(extra, rest)))

        torch = _torch()
        lib = _library()
        lib.define(f"{self.name}_block_mask({', '.join('Tensor ' + n for n in names)}) -> Tensor[]")
        lib.impl(f"{self.name}_block_mask", mask_impl, "CompositeExplicitAutograd")
        torch.library.register_fake(f"tessera::{self.name}_block_mask", mask_fake, lib=lib)
        self.mask_op = getattr(torch.ops.tessera, self.name + "_block_mask").default
        lib.define(f"{self.name}_masked(Tensor q, Tensor k, Tensor v, Tensor[] block_mask"
                   f"{''.join(', Tensor ' + n for n in names[3:])}) -> (Tensor, Tensor)")
        lib.impl(f"{self.name}_masked", masked_impl, "CompositeExplicitAutograd")
        torch.library.register_fake(f"tessera::{self.name}_masked",
                                    lambda q, k, v, mask, *rest: fake(q, k, v, *rest), lib=lib)
        self.masked_op = getattr(torch.ops.tessera, self.name + "_masked").default
        self._register_autograd(f"{self.name}_masked", lists=1)

    def _register_program(self):
        kernel = self.kernel
        decls, outputs = kernel.spec.inputs, kernel._outputs
        torch = _torch()

        def impl(*inputs):
            result = kernel(*_plain(inputs))
            result = result if isinstance(result, tuple) else (result,)
            return tuple(_as_torch(x) for x in result) if len(result) > 1 else _as_torch(result[0])

        def dtype(kind):
            return getattr(torch, kernel.dtype if kind == "element" else kind)

        def fake(*inputs):
            try:  # bad inputs fail in impl, with the kernel's message; here only shapes
                env = _check_inputs(decls, inputs, lambda t: t.dtype, lambda d: dtype(d.kind),
                                    kernel.head_dim, kernel.value_dim)
                dims = [[dim_value(x, env) for x in o.dims] for o in outputs]
            except (TypeError, ValueError, KeyError):
                dims = [[0] * len(o.dims) for o in outputs]
            result = [_new(inputs[0], d, dtype(o.kind)) for d, o in zip(dims, outputs)]
            return tuple(result) if len(result) > 1 else result[0]

        self.forward = _Op(self.name, ["in_" + n for n in self.input_names], len(outputs),
                           impl, fake)
        self._register_program_autograd()

    def _register_program_autograd(self):
        backward, setup_context = _missing_backward(
            f"tessera program {self.kernel.spec.name!r} has no backward")
        _torch().library.register_autograd(f"tessera::{self.name}", backward,
                                           setup_context=setup_context, lib=_library())

    # ------------------------------------------------------------------ calls

    def ops(self):
        """Every op registered for this kernel."""
        grads = [g and g.op for g in (self.grad_op, self.grad_tables_op)]
        return [o for o in (self.forward.op, *grads, self.mask_op, self.masked_op)
                if o is not None]

    def block_mask(self, q, k, v, **buffers):
        """A GPU mask_mod kernel's classified tiles for these shapes and tables (a list of
        tensors), to pass as `block_mask=` to calls with the same shapes."""
        if self.mask_op is None:
            raise TypeError("block_mask() is for GPU kernels of specs with a mask_mod")
        return self.mask_op(q, k, v, *[buffers[n] for n in self.input_names])

    def __call__(self, *args, return_lse: bool = False, block_mask=None, **inputs):
        if self.kind == "program":
            return _call(self.forward.op, _given(self.kernel.spec, args, inputs))
        if len(args) != 3:
            raise TypeError(f"tessera kernel {self.kernel.spec.name!r} takes q, k, v "
                            f"positionally, got {len(args)} positional arguments")
        if inputs or self.input_names:
            check_names("inputs", self.input_names, inputs)
        rest = [inputs[n] for n in self.input_names]
        if block_mask is not None:
            if self.masked_op is None:
                raise TypeError("block_mask= is for GPU kernels of specs with a mask_mod")
            out = self.masked_op(*args, list(block_mask), *rest)
        else:
            out = _call(self.forward.op, [*args, *rest])
        if self.kind == "softmax":
            return out if return_lse else out[0]
        return out


def torch_op(kernel) -> TorchKernel:
    """The kernel's torch ops (registered on first use; the same object afterwards)."""
    name = op_name(kernel)
    if name not in _OPS:
        _OPS[name] = TorchKernel(kernel)
    return _OPS[name]


def wants_torch_grad(*tensors) -> bool:
    """Whether a call on these (torch) tensors must record a backward."""
    torch = sys.modules.get("torch")  # not imported here: without torch, no torch tensors
    return (torch is not None and torch.is_grad_enabled()
            and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors))


def differentiable_call(kernel, q, k, v, return_lse, out, lse_out, block_mask, buffers):
    """kernel(q, k, v, **buffers) for torch tensors of which some require grad (CPU or
    CUDA softmax kernels): through the kernel's torch op, whose registered autograd
    runs the generated backward; the one autograd path of softmax kernels. Tables that
    require grad are checked here, before the forward runs."""
    torch = _torch()
    if out is not None or lse_out is not None:
        raise ValueError("out and lse_out are not available when q, k, v or a table "
                         "require grad (the output is differentiable)")
    if block_mask is not None:  # a GPU kernel's TileMask: its tensors go to the torch op
        if getattr(block_mask, "kernel", None) is not kernel:
            raise ValueError("block_mask must come from this kernel's block_mask()")
        block_mask = block_mask.workspaces
    names = [n for n, t in buffers.items() if isinstance(t, torch.Tensor) and t.requires_grad]
    check_grad_tables(kernel.spec, names)
    return torch_op(kernel)(q, k, v, return_lse=return_lse, block_mask=block_mask, **buffers)
