#include "pfa/photonic/counter_rng.h"

#include <cstring>

#include <immintrin.h>

namespace pfa::photonic {

namespace {

// AES in software, for CPUs without AES-NI: the same round functions as AESENC / AESENCLAST.
struct AesTables {
  uint8_t sbox[256];
  AesTables() {
    // S-box: multiplicative inverse in GF(2^8) (x^8 + x^4 + x^3 + x + 1), then the affine map.
    uint8_t p = 1, q = 1;
    do {
      p = static_cast<uint8_t>(p ^ (p << 1) ^ ((p & 0x80) ? 0x1b : 0));  // p *= 3
      q ^= static_cast<uint8_t>(q << 1);                                  // q /= 3
      q ^= static_cast<uint8_t>(q << 2);
      q ^= static_cast<uint8_t>(q << 4);
      if (q & 0x80) q ^= 0x09;
      auto rotl = [](uint8_t x, int s) { return static_cast<uint8_t>((x << s) | (x >> (8 - s))); };
      sbox[p] = static_cast<uint8_t>(q ^ rotl(q, 1) ^ rotl(q, 2) ^ rotl(q, 3) ^ rotl(q, 4) ^ 0x63);
    } while (p != 1);
    sbox[0] = 0x63;
  }
};

const AesTables& tables() {
  static const AesTables t;
  return t;
}

uint8_t xtime(uint8_t x) { return static_cast<uint8_t>((x << 1) ^ ((x & 0x80) ? 0x1b : 0)); }

// state and key as 16 bytes, byte i = bits 8i..8i+7 of the 128-bit value (row i % 4, column i / 4).
void aes_round(uint8_t s[16], const uint8_t k[16], bool last) {
  const uint8_t* sbox = tables().sbox;
  uint8_t t[16];
  for (int c = 0; c < 4; ++c)
    for (int r = 0; r < 4; ++r) t[r + 4 * c] = sbox[s[r + 4 * ((c + r) % 4)]];  // ShiftRows, SubBytes
  if (!last) {
    for (int c = 0; c < 4; ++c) {  // MixColumns
      const uint8_t a0 = t[4 * c], a1 = t[4 * c + 1], a2 = t[4 * c + 2], a3 = t[4 * c + 3];
      const uint8_t all = a0 ^ a1 ^ a2 ^ a3;
      t[4 * c] = a0 ^ all ^ xtime(a0 ^ a1);
      t[4 * c + 1] = a1 ^ all ^ xtime(a1 ^ a2);
      t[4 * c + 2] = a2 ^ all ^ xtime(a2 ^ a3);
      t[4 * c + 3] = a3 ^ all ^ xtime(a3 ^ a0);
    }
  }
  for (int i = 0; i < 16; ++i) s[i] = t[i] ^ k[i];
}

__attribute__((target("aes,sse4.1"))) void ars5_block_aesni(uint64_t key, const uint32_t in[4],
                                                             uint32_t out[4]) {
  uint64_t rk[6][2];
  ars5_round_keys(key, rk);
  __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
  v = _mm_xor_si128(v, _mm_set_epi64x(static_cast<long long>(rk[0][1]), static_cast<long long>(rk[0][0])));
  for (int r = 1; r < 5; ++r)
    v = _mm_aesenc_si128(v, _mm_set_epi64x(static_cast<long long>(rk[r][1]), static_cast<long long>(rk[r][0])));
  v = _mm_aesenclast_si128(v, _mm_set_epi64x(static_cast<long long>(rk[5][1]), static_cast<long long>(rk[5][0])));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), v);
}

bool cpu_has_aesni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
}

}  // namespace

void ars5_block_software(uint64_t key, const uint32_t in[4], uint32_t out[4]) {
  uint64_t rk[6][2];
  ars5_round_keys(key, rk);
  uint8_t s[16], k[16];
  std::memcpy(s, in, 16);
  std::memcpy(k, rk[0], 16);
  for (int i = 0; i < 16; ++i) s[i] ^= k[i];
  for (int r = 1; r < 6; ++r) {
    std::memcpy(k, rk[r], 16);
    aes_round(s, k, r == 5);
  }
  std::memcpy(out, s, 16);
}

void ars5_block(uint64_t key, const uint32_t in[4], uint32_t out[4]) {
  static const bool aesni = cpu_has_aesni();
  if (aesni) ars5_block_aesni(key, in, out);
  else ars5_block_software(key, in, out);
}

float detector_noise(uint64_t key, uint32_t n, uint32_t chunk, uint32_t stride) {
  const uint32_t group = (n & ~3u) * stride + chunk;
  const uint32_t in0[4] = {group, 0, 0, 0}, in1[4] = {group, 1, 0, 0};
  uint32_t a[4], b[4];
  ars5_block(key, in0, a);
  ars5_block(key, in1, b);
  return irwin_hall4(a[n & 3], b[n & 3]);
}

}  // namespace pfa::photonic
