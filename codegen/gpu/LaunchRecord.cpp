//===- LaunchRecord.cpp - grid formulas and workspaces ----------------------===//
//
// What a runtime without MLIR needs to launch a kernel: each grid size as a formula of
// argument sizes, and the host allocations between grids turned into workspace
// arguments whose shapes are such formulas.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/LaunchRecord.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace tessera;

/// (argument number, dim) of a `memref.dim` of an entry argument with a constant index.
static std::optional<std::pair<int64_t, int64_t>> argumentDim(Value x, func::FuncOp func) {
  auto dim = x.getDefiningOp<memref::DimOp>();
  if (!dim)
    return std::nullopt;
  auto arg = dyn_cast<BlockArgument>(dim.getSource());
  auto index = dim.getConstantIndex();
  if (!arg || arg.getOwner() != &func.getBody().front() || !index)
    return std::nullopt;
  return std::make_pair(int64_t(arg.getArgNumber()), *index);
}

/// A grid size as the runtime recomputes it: ceil(dim(arg, d) / divisor), or a constant;
/// or a dim that is 0 where it equals another, or where it differs (a buffer or a grid
/// only some shapes use); or the product of two of these.
FailureOr<Attribute> tessera::gpu::gridFormula(Value size, func::FuncOp func) {
  Builder b(size.getContext());
  // [-2, a, d, a2, d2]: dim d of argument a, or 0 where it equals dim d2 of argument a2
  // (select(dim != dim2, dim, 0)); [-3, ...]: 0 where they differ (select(dim == dim2, ...)).
  if (auto select = size.getDefiningOp<arith::SelectOp>()) {
    auto cmp = select.getCondition().getDefiningOp<arith::CmpIOp>();
    bool ne = cmp && cmp.getPredicate() == arith::CmpIPredicate::ne;
    bool eq = cmp && cmp.getPredicate() == arith::CmpIPredicate::eq;
    if (!(ne || eq) || cmp.getLhs() != select.getTrueValue() ||
        !matchPattern(select.getFalseValue(), m_Zero()))
      return failure();
    auto dim = argumentDim(cmp.getLhs(), func), other = argumentDim(cmp.getRhs(), func);
    if (!dim || !other)
      return failure();
    return b.getDenseI64ArrayAttr(
        {ne ? -2 : -3, dim->first, dim->second, other->first, other->second});
  }
  // [-4, n, f1..., f2...]: the product of formula f1 (n entries) and formula f2 (a
  // classification grid over heads x key-tile chunks, for a mask_mod that reads h).
  if (auto mul = size.getDefiningOp<arith::MulIOp>()) {
    FailureOr<Attribute> lhs = gridFormula(mul.getLhs(), func);
    FailureOr<Attribute> rhs = gridFormula(mul.getRhs(), func);
    if (failed(lhs) || failed(rhs))
      return failure();
    ArrayRef<int64_t> f1 = cast<DenseI64ArrayAttr>(*lhs).asArrayRef();
    ArrayRef<int64_t> f2 = cast<DenseI64ArrayAttr>(*rhs).asArrayRef();
    SmallVector<int64_t> formula{-4, int64_t(f1.size())};
    formula.append(f1.begin(), f1.end());
    formula.append(f2.begin(), f2.end());
    return b.getDenseI64ArrayAttr(formula);
  }
  // [a, d, q1, q2, ...]: dim d of argument a (d itself when a = -1), divided by q1, then
  // q2, ... — rounding up for q > 0, down for q < 0 (recorded as -q).
  SmallVector<int64_t> divisors;
  Value x = size;
  APInt c;
  while (true) {
    Value lhs, rhs;
    int64_t sign = 1;
    if (auto ceil = x.getDefiningOp<arith::CeilDivSIOp>()) {
      lhs = ceil.getLhs(), rhs = ceil.getRhs();
    } else if (auto floor = x.getDefiningOp<arith::DivSIOp>()) {
      lhs = floor.getLhs(), rhs = floor.getRhs(), sign = -1;
    } else {
      break;
    }
    if (!matchPattern(rhs, m_ConstantInt(&c)) || c.getSExtValue() < 1)
      return failure();
    divisors.push_back(sign * c.getSExtValue());
    x = lhs;
  }
  std::reverse(divisors.begin(), divisors.end()); // innermost first
  if (divisors.empty())
    divisors.push_back(1);
  SmallVector<int64_t> formula;
  if (matchPattern(x, m_ConstantInt(&c))) {
    formula = {-1, c.getSExtValue()};
  } else {
    auto dim = argumentDim(x, func);
    if (!dim)
      return failure();
    formula = {dim->first, dim->second};
  }
  formula.append(divisors);
  return b.getDenseI64ArrayAttr(formula);
}

/// Host-side allocations (intermediates between grids: tile lists, scratch, program
/// intermediates) become trailing function arguments the runtime allocates: their
/// shapes, as grid-size formulas of the other arguments, go to `tessera.workspaces`.
LogicalResult tessera::gpu::allocationsToWorkspaces(func::FuncOp func) {
  Builder attrs(func.getContext());
  SmallVector<Attribute> workspaces;
  SmallVector<memref::AllocOp> allocs(func.getBody().getOps<memref::AllocOp>());
  for (memref::AllocOp alloc : allocs) {
    MemRefType type = alloc.getType();
    SmallVector<Attribute> shape;
    auto sizes = alloc.getDynamicSizes().begin();
    for (int64_t extent : type.getShape()) {
      if (!ShapedType::isDynamic(extent)) {
        shape.push_back(attrs.getDenseI64ArrayAttr({-1, extent, 1}));
        continue;
      }
      FailureOr<Attribute> f = gridFormula(*sizes++, func);
      if (failed(f))
        return alloc.emitError("GPU workspace sizes must be ceil or floor of dim(argument) / "
                               "constant, constants, or a dim selected where it differs "
                               "from another");
      shape.push_back(*f);
    }
    for (Operation *user : llvm::make_early_inc_range(alloc->getUsers()))
      if (isa<memref::DeallocOp>(user))
        user->erase();
    // Intermediates reach their grids through casts to a strided type (as arguments
    // do): the argument takes that type, so kernels see it like any other buffer.
    SmallVector<memref::CastOp> casts;
    for (Operation *user : alloc->getUsers())
      if (auto cast = dyn_cast<memref::CastOp>(user))
        casts.push_back(cast);
    Type argType = type;
    bool viaCasts = !casts.empty() &&
                    casts.size() == size_t(std::distance(alloc->user_begin(), alloc->user_end())) &&
                    llvm::all_of(casts, [&](memref::CastOp c) {
                      return c.getType() == casts.front().getType();
                    });
    if (viaCasts)
      argType = casts.front().getType();
    unsigned index = func.getNumArguments();
    if (failed(func.insertArgument(index, argType, {}, alloc.getLoc())))
      return alloc.emitError("could not turn the allocation into a kernel argument");
    if (viaCasts) {
      for (memref::CastOp cast : casts) {
        cast.replaceAllUsesWith(func.getArgument(index));
        cast.erase();
      }
    } else {
      alloc.replaceAllUsesWith(func.getArgument(index));
    }
    alloc.erase();
    std::string elem;
    llvm::raw_string_ostream os(elem);
    os << type.getElementType();
    workspaces.push_back(
        attrs.getDictionaryAttr({attrs.getNamedAttr("shape", attrs.getArrayAttr(shape)),
                                 attrs.getNamedAttr("dtype", attrs.getStringAttr(elem))}));
  }
  func->setAttr("tessera.workspaces", attrs.getArrayAttr(workspaces));
  return success();
}
