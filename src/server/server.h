// The server layer: `aviary serve`, an OpenAI-compatible HTTP API over the
// model layer (continuous batching, prefix state cache). Placeholder header
// until the first server sources land.
#pragma once
