//===- SoftmaxDenseWalk.cpp - the key tiles of the bounds' range ----------===//
//
// Without lists every key tile of the causal / window range is visited, as three loops:
// the tiles before the ones the bounds keep whole (masked), those (unmasked: no mask
// arithmetic at all), and the tiles after (masked: the diagonal, the ragged end).
//
//===----------------------------------------------------------------------===//
#include "passes/SoftmaxTileProgram.h"

using namespace mlir;
using namespace tessera;

void tessera::walkDenseKeyTiles(SoftmaxProgram &p, const KeyTileRange &tiles) {
  auto loop = [&](Value from, Value to, bool masked) {
    ValueRange results = p.forLoop(from, to, p.state, [&](Value t, ValueRange carried) {
      return p.stepTile(t, carried, masked);
    });
    p.state.assign(results.begin(), results.end());
  };
  loop(tiles.lo, tiles.fullLo, /*masked=*/true);
  loop(tiles.fullLo, tiles.fullHi, /*masked=*/false);
  loop(tiles.fullHi, tiles.hi, /*masked=*/true);
}
