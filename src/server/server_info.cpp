// Placeholder translation unit so the server layer is a real library from
// the start; replaced by the server sources.
#include "server/server.h"
