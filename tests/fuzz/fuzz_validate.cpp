// Fuzz target: validation of an attention call's tensors, the engine's first line of defence. The
// bytes become the metadata of q, k, v, out and lse (dimensions, shapes, strides, dtypes, devices,
// offsets) and the options; data pointers are never dereferenced by validation. Every input must
// either validate into a consistent problem or fail with pfa::Error.
#include "../../core/src/validate.h"

#include <pfa/error.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

struct Reader {
  const uint8_t* data;
  size_t size;
  template <class T>
  T next() {
    T value{};
    const size_t n = size < sizeof(T) ? size : sizeof(T);
    std::memcpy(&value, data, n);
    data += n;
    size -= n;
    return value;
  }
};

struct FuzzTensor {
  int64_t shape[4];
  int64_t strides[4];
  DLTensor tensor{};
};

// Small sizes mostly, with the occasional huge or negative value from the raw bytes.
int64_t dimension(Reader& r) {
  const uint8_t kind = r.next<uint8_t>();
  if (kind < 200) return kind % 9;
  return r.next<int64_t>();
}

void fill(Reader& r, FuzzTensor& t, uintptr_t base) {
  t.tensor.ndim = r.next<uint8_t>() % 6;
  for (int i = 0; i < 4; ++i) t.shape[i] = dimension(r);
  const bool strided = r.next<uint8_t>() & 1;
  for (int i = 0; i < 4; ++i) t.strides[i] = dimension(r);
  t.tensor.shape = t.shape;
  t.tensor.strides = strided ? t.strides : nullptr;
  const uint8_t dtype = r.next<uint8_t>();
  t.tensor.dtype = DLDataType{static_cast<uint8_t>(dtype % 6), static_cast<uint8_t>(8 << (dtype % 4)),
                              static_cast<uint16_t>(1 + ((dtype >> 4) & 1))};
  t.tensor.device = DLDevice{static_cast<DLDeviceType>(1 + (r.next<uint8_t>() % 3)), 0};
  t.tensor.data = reinterpret_cast<void*>(base + (r.next<uint16_t>() & 0xfff0));
  t.tensor.byte_offset = r.next<uint8_t>();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r{data, size};
  FuzzTensor q, k, v, out, lse;
  fill(r, q, 0x100000);
  fill(r, k, 0x200000);
  fill(r, v, 0x300000);
  fill(r, out, 0x400000);
  fill(r, lse, 0x500000);
  lse.tensor.ndim = 3;
  pfa::AttentionOptions options;
  const uint8_t flags = r.next<uint8_t>();
  options.causal = flags & 1;
  options.layout = static_cast<pfa_layout>((flags >> 1) % 4);
  options.lse = (flags & 8) ? &lse.tensor : nullptr;
  options.softmax_scale = r.next<float>();
  pfa::detail::ValidatedCall call;
  try {
    pfa::detail::validate_call(q.tensor, k.tensor, v.tensor, out.tensor, options, call);
    const pfa::Problem& p = call.problem;
    // What validation accepts must be a consistent problem.
    if (p.batch <= 0 || p.seqlen_q <= 0 || p.seqlen_k <= 0 || p.head_dim <= 0 ||
        p.heads_kv <= 0 || p.heads_q % p.heads_kv != 0 || call.out.strides[3] != 1) {
      std::abort();
    }
  } catch (const pfa::Error&) {
  }
  return 0;
}
