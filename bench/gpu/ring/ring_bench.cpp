// Benchmark: attention over a long sequence on one GPU (cuda_fa3) and split over N GPUs (cuda_ring
// on NCCL), in one run on the same inputs, both through the engine. Prints a markdown table with
// card, date, commit, NCCL version, each time (median of the repeats, CUDA events; the ring's time
// is the slowest rank's), the speed-up and the scaling efficiency t1 / (N * tN), and for the shorter
// lengths the relative difference between the two outputs.
//
//   pfa_ring_bench [--ranks N] [--lengths 4096,8192,...] [--repeats 5] [--heads 16] [--dim 128]
//                  [--store FILE]   (records every execution, for the router to learn the crossover)
#include <pfa/engine.h>
#include <pfa/sequence_sharding.h>
#include <pfa/store/store_observer.h>

#include "ring_fill.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace pfa;

#define CHECK_CUDA(x)                                                                      \
  do {                                                                                     \
    const cudaError_t e_ = (x);                                                            \
    if (e_ != cudaSuccess) {                                                               \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

struct Config {
  int ranks = 0;
  std::vector<int64_t> lengths = {1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144};
  int repeats = 5;
  int64_t batch = 1, heads = 16, dim = 128;
  std::string store;
};

struct Shard {
  int device = 0;
  int64_t rows = 0;
  void* q = nullptr;
  void* k = nullptr;
  void* v = nullptr;
  void* out = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  DLTensor tq{}, tk{}, tv{}, tout{};
  int64_t shape[4]{};

  Shard(int dev, const Config& c, int64_t rows_, int ranks, int rank) : device(dev), rows(rows_) {
    CHECK_CUDA(cudaSetDevice(device));
    const size_t bytes = size_t(c.batch * rows * c.heads * c.dim) * 2;
    CHECK_CUDA(cudaMalloc(&q, bytes));
    CHECK_CUDA(cudaMalloc(&k, bytes));
    CHECK_CUDA(cudaMalloc(&v, bytes));
    CHECK_CUDA(cudaMalloc(&out, bytes));
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    CHECK_CUDA(bench::fill_shard(q, c.batch, rows, c.heads, c.dim, ranks, rank, 11, stream));
    CHECK_CUDA(bench::fill_shard(k, c.batch, rows, c.heads, c.dim, ranks, rank, 22, stream));
    CHECK_CUDA(bench::fill_shard(v, c.batch, rows, c.heads, c.dim, ranks, rank, 33, stream));
    CHECK_CUDA(cudaStreamSynchronize(stream));
    shape[0] = c.batch, shape[1] = rows, shape[2] = c.heads, shape[3] = c.dim;
    for (auto [t, p] : {std::pair{&tq, q}, {&tk, k}, {&tv, v}, {&tout, out}}) {
      t->data = p;
      t->device = {kDLCUDA, device};
      t->ndim = 4;
      t->dtype = {kDLBfloat, 16, 1};
      t->shape = shape;
      t->strides = nullptr;
    }
  }
  ~Shard() {
    cudaSetDevice(device);
    cudaFree(q), cudaFree(k), cudaFree(v), cudaFree(out);
    cudaEventDestroy(start), cudaEventDestroy(stop);
    cudaStreamDestroy(stream);
  }
  // One timed call; returns milliseconds.
  float time_call(Engine& engine, AttentionOptions o) {
    CHECK_CUDA(cudaSetDevice(device));
    o.stream = stream;
    CHECK_CUDA(cudaEventRecord(start, stream));
    engine.attention(tq, tk, tv, tout, o);
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    return ms;
  }
  std::vector<float> output() const {
    std::vector<__nv_bfloat16> h(size_t(shape[0] * shape[1] * shape[2] * shape[3]));
    cudaSetDevice(device);
    CHECK_CUDA(cudaMemcpy(h.data(), out, h.size() * 2, cudaMemcpyDeviceToHost));
    std::vector<float> f(h.size());
    for (size_t i = 0; i < h.size(); ++i) f[i] = __bfloat162float(h[i]);
    return f;
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoll(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--ranks") c.ranks = std::stoi(v);
    else if (a == "--lengths") c.lengths = parse_list(v);
    else if (a == "--repeats") c.repeats = std::stoi(v);
    else if (a == "--heads") c.heads = std::stoll(v);
    else if (a == "--dim") c.dim = std::stoll(v);
    else if (a == "--batch") c.batch = std::stoll(v);
    else if (a == "--store") c.store = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  int gpus = 0;
  if (cudaGetDeviceCount(&gpus) != cudaSuccess || gpus < 2) {
    std::fprintf(stderr, "pfa_ring_bench needs 2 or more GPUs (found %d)\n", gpus);
    return 3;
  }
  const int n = c.ranks > 0 ? std::min(c.ranks, gpus) : gpus;
  std::vector<ncclComm_t> comms(static_cast<size_t>(n));
  std::vector<int> devs(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) devs[size_t(r)] = r;
  if (ncclCommInitAll(comms.data(), n, devs.data()) != ncclSuccess) {
    std::fprintf(stderr, "ncclCommInitAll failed\n");
    return 1;
  }

  EngineOptions eo;
  eo.plugins.paths = {std::string(PFA_PLUGIN_DIR) + "/pfa_plugin_cuda_fa3.so",
                      std::string(PFA_PLUGIN_DIR) + "/pfa_plugin_cuda_ring.so"};
  eo.plugins.default_paths = false;
  std::shared_ptr<store::StoreObserver> observer;
  if (!c.store.empty()) {
    observer = std::make_shared<store::StoreObserver>(c.store, store::AsyncWriterOptions{},
                                                      store::RecordSource::bench);
    eo.observer = observer;
  }
  Engine engine(eo);
  for (const auto& e : engine.load_errors()) std::fprintf(stderr, "plugin: %s\n", e.message.c_str());

  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  int nccl = 0;
  ncclGetVersion(&nccl);
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  const char* commit = std::getenv("PFA_COMMIT");
  const char* nvls = std::getenv("NCCL_NVLS_ENABLE");
  std::printf("## Ring attention: %d x %s vs one GPU\n\n", n, prop.name);
  std::printf("- date %s, commit %s, NCCL %d.%d.%d (NCCL_NVLS_ENABLE=%s), bf16, batch %lld, "
              "heads %lld, head dim %lld\n",
              date, commit ? commit : "unknown", nccl / 10000, (nccl / 100) % 100, nccl % 100,
              nvls ? nvls : "unset", (long long)c.batch, (long long)c.heads, (long long)c.dim);
  std::printf("- one GPU = cuda_fa3 on GPU 0 with the whole sequence; ring = cuda_ring with each "
              "GPU holding 1/%d of it (mirrored chunks); both through the engine, same inputs\n",
              n);
  std::printf("- times: median of %d calls after one warm-up, CUDA events (ring: slowest rank); "
              "TFLOP/s counts the whole sequence's FLOPs (halved when causal)\n\n",
              c.repeats);
  std::printf("| causal | L | one GPU ms | one GPU TFLOP/s | ring ms | ring TFLOP/s | speed-up | "
              "efficiency | rel. diff |\n|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);

  for (bool causal : {false, true}) {
    for (int64_t L : c.lengths) {
      if (L % (2 * n) != 0) continue;
      const double flops = 4.0 * double(c.batch * c.heads * c.dim) * double(L) * double(L) *
                           (causal ? 0.5 : 1.0);
      AttentionOptions single_o;
      single_o.causal = causal;
      single_o.backend = "cuda_fa3";
      std::vector<double> t1;
      std::vector<float> whole_out;
      {
        Shard whole(0, c, L, 1, 0);
        whole.time_call(engine, single_o);
        for (int i = 0; i < c.repeats; ++i) t1.push_back(whole.time_call(engine, single_o));
        if (L <= 32768) whole_out = whole.output();
      }
      std::vector<std::vector<double>> tr(static_cast<size_t>(n));
      std::vector<std::vector<float>> ring_out(static_cast<size_t>(n));
      std::barrier sync(n);
      std::vector<std::thread> threads;
      std::vector<std::string> errors(static_cast<size_t>(n));
      for (int r = 0; r < n; ++r) {
        threads.emplace_back([&, r] {
          try {
            Shard s(r, c, L / n, n, r);
            AttentionOptions o;
            o.causal = causal;
            o.ranks = n;
            o.communicator = comms[size_t(r)];
            sync.arrive_and_wait();
            s.time_call(engine, o);
            for (int i = 0; i < c.repeats; ++i) {
              sync.arrive_and_wait();
              tr[size_t(r)].push_back(s.time_call(engine, o));
            }
            if (L <= 32768) ring_out[size_t(r)] = s.output();
          } catch (const std::exception& e) {
            errors[size_t(r)] = e.what();
          }
        });
      }
      for (auto& t : threads) t.join();
      for (const auto& e : errors) {
        if (!e.empty()) {
          std::fprintf(stderr, "ring failed: %s\n", e.c_str());
          return 1;
        }
      }
      std::vector<double> slowest(static_cast<size_t>(c.repeats), 0.0);
      for (int r = 0; r < n; ++r)
        for (int i = 0; i < c.repeats; ++i)
          slowest[size_t(i)] = std::max(slowest[size_t(i)], tr[size_t(r)][size_t(i)]);
      const double m1 = median(t1), mn = median(slowest);
      std::string diff = "-";
      if (!whole_out.empty()) {
        double d2 = 0, r2 = 0;
        const int64_t shard = L / n, row = c.heads * c.dim;
        for (int r = 0; r < n; ++r)
          for (int64_t b = 0; b < c.batch; ++b)
            for (int64_t i = 0; i < shard; ++i) {
              const int64_t g = sharding::global_row(n, r, shard, i);
              const float* a = ring_out[size_t(r)].data() + (b * shard + i) * row;
              const float* w = whole_out.data() + (b * L + g) * row;
              for (int64_t e = 0; e < row; ++e) {
                d2 += double(a[e] - w[e]) * double(a[e] - w[e]);
                r2 += double(w[e]) * double(w[e]);
              }
            }
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1e", std::sqrt(d2 / r2));
        diff = buf;
      }
      std::printf("| %s | %lld | %.2f | %.0f | %.2f | %.0f | %.2fx | %.0f%% | %s |\n",
                  causal ? "yes" : "no", (long long)L, m1, flops / (m1 * 1e-3) / 1e12, mn,
                  flops / (mn * 1e-3) / 1e12, m1 / mn, 100.0 * m1 / (n * mn), diff.c_str());
      std::fflush(stdout);
    }
  }
  for (auto comm : comms) ncclCommDestroy(comm);
  if (observer) observer->writer().flush();
  return 0;
}
