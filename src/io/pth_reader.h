// Reader for PyTorch `.pth` files as torch.save writes them: a ZIP archive of
// stored records under one folder (<root>/data.pkl, <root>/data/<key>, ...).
#pragma once

#include <memory>

#include "io/checkpoint.h"

namespace aviary {

// Tensors point straight into `file`; nothing is copied. Checks the CRC-32 of
// data.pkl (not of the tensor data: see Checkpoint::verify_checksums), that
// every storage record has numel x element-size bytes, and that every tensor's
// strided extent lies inside its storage.
Checkpoint read_pth(std::shared_ptr<const MappedFile> file);

}  // namespace aviary
