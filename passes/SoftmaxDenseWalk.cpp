//===- SoftmaxDenseWalk.cpp - the key tiles of the bounds' range ----------===//
//
// Without lists every key tile of the causal / window range is visited, as three loops:
// the tiles before the ones the bounds keep whole (masked), those (unmasked: no mask
// arithmetic at all), and the tiles after (masked: the diagonal, the ragged end).
// The second and third loops say that they continue the loop before them
// (tile.continues_previous): each starts where the last ends and loads K and V as the
// same function of its induction variable, so a GPU runs one copy pipeline across all
// three (TileToGpu's continuesLastLoop).
//
//===----------------------------------------------------------------------===//
#include "passes/SoftmaxTileProgram.h"

#include "passes/TileLoopAttrs.h"

using namespace mlir;
using namespace tessera;

void tessera::walkDenseKeyTiles(SoftmaxProgram &p, const KeyTileRange &tiles) {
  auto loop = [&](Value from, Value to, bool masked, bool continuesPrevious) {
    ValueRange results = p.forLoop(from, to, p.state, [&](Value t, ValueRange carried) {
      return p.stepTile(t, carried, masked);
    });
    if (continuesPrevious)
      results.front().getDefiningOp()->setAttr(tile_loop::kContinuesPrevious,
                                               p.b.getUnitAttr());
    p.state.assign(results.begin(), results.end());
  };
  loop(tiles.lo, tiles.fullLo, /*masked=*/true, /*continuesPrevious=*/false);
  loop(tiles.fullLo, tiles.fullHi, /*masked=*/false, /*continuesPrevious=*/true);
  loop(tiles.fullHi, tiles.hi, /*masked=*/true, /*continuesPrevious=*/true);
}
