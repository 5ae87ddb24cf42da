"""Runs every example; exits non-zero if one misses the fp32 tolerance (1e-5)."""
import sys

import alibi
import causal
import document_mask
import gqa
import hyperattention
import learned_bias
import lightning_attention2
import moba
import nsa
import sliding_window

TOLERANCE = 1e-5


def main():
    errors = {m.__name__: m.main() for m in (causal, sliding_window, alibi, document_mask, gqa,
                                                lightning_attention2, moba, nsa, hyperattention,
                                                learned_bias)}
    bad = [name for name, err in errors.items() if not err <= TOLERANCE]
    print("all examples within 1e-5" if not bad else f"over tolerance: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
