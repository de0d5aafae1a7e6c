// The single pybind11 module `bigmodel_fast._C`. Each native part exposes an `<part>_init(module)`
// function that registers its bindings; this file only wires them together.
#include <pybind11/pybind11.h>

namespace bmf {
namespace dedup {
void dedup_init(pybind11::module_& m);
}  // namespace dedup
}  // namespace bmf

PYBIND11_MODULE(_C, m) {
  m.doc() = "bigmodel_fast native extension (no libtorch): XXH64 hashing for dedup.";
  bmf::dedup::dedup_init(m);
}
