//===- AttnBlockOps.td - block-structure ops ---------------*- tablegen -*-===//
#ifndef TESSERA_ATTN_BLOCK_OPS
#define TESSERA_ATTN_BLOCK_OPS
#endif
