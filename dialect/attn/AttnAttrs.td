//===- AttnAttrs.td - attn enums and attributes ------------*- tablegen -*-===//
#ifndef TESSERA_ATTN_ATTRS
#define TESSERA_ATTN_ATTRS

include "dialect/attn/AttnDialect.td"

def Attn_FeatureMap : I32EnumAttr<"FeatureMap",
    "feature map applied to queries and keys of linear attention", [
      I32EnumAttrCase<"identity", 0>,
      I32EnumAttrCase<"elu_plus_one", 1>,
      I32EnumAttrCase<"relu", 2>
    ]> {
  let cppNamespace = "::tessera::attn";
  let genSpecializedAttr = 0;
}
def Attn_FeatureMapAttr : EnumAttr<Attn_Dialect, Attn_FeatureMap, "feature_map"> {
  let assemblyFormat = "`<` $value `>`";
}

def Attn_PoolKind : I32EnumAttr<"PoolKind", "how a block of keys is compressed", [
      I32EnumAttrCase<"mean", 0>
    ]> {
  let cppNamespace = "::tessera::attn";
  let genSpecializedAttr = 0;
}
def Attn_PoolKindAttr : EnumAttr<Attn_Dialect, Attn_PoolKind, "pool"> {
  let assemblyFormat = "`<` $value `>`";
}

def Attn_BlockScore : I32EnumAttr<"BlockScore",
    "what attn.block_topk ranks key blocks by", [
      I32EnumAttrCase<"dot", 0>,
      I32EnumAttrCase<"softmax", 1>
    ]> {
  let cppNamespace = "::tessera::attn";
  let genSpecializedAttr = 0;
}
def Attn_BlockScoreAttr : EnumAttr<Attn_Dialect, Attn_BlockScore, "block_score"> {
  let assemblyFormat = "`<` $value `>`";
}

#endif // TESSERA_ATTN_ATTRS
