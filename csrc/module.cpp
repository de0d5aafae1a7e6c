// The single pybind11 module `bigmodel_fast._C`. Each native part exposes an `<part>_init(module)`
// function that registers its bindings; this file only wires them together.
#include <pybind11/pybind11.h>

namespace bmf {
namespace dedup {
void dedup_init(pybind11::module_& m);
void minhash_init(pybind11::module_& m);
}  // namespace dedup
namespace loader {
void loader_init(pybind11::module_& m);
}  // namespace loader
}  // namespace bmf

PYBIND11_MODULE(_C, m) {
  m.doc() =
      "bigmodel_fast native extension (no libtorch): XXH64 hashing and MinHash-LSH for dedup, and the "
      "threaded token-shard loader (TokenLoaderCore).";
  bmf::dedup::dedup_init(m);
  bmf::dedup::minhash_init(m);
  bmf::loader::loader_init(m);
}
