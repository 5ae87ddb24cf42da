#include "dialect/attn/AttnDialect.h"
